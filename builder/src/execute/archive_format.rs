//! The compressions ADD sees through when it extracts a local tar archive, as BuildKit's:
//! none, gzip, bzip2, xz and zstd, told apart by their magic bytes, never by file name.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use flate2::read::GzDecoder;

/// How an archive file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveCompression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl ArchiveCompression {
    /// From the first bytes of a file.
    pub fn detect(head: &[u8]) -> ArchiveCompression {
        if head.starts_with(&[0x1f, 0x8b]) {
            ArchiveCompression::Gzip
        } else if head.starts_with(b"BZh") {
            ArchiveCompression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            ArchiveCompression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            ArchiveCompression::Zstd
        } else {
            ArchiveCompression::None
        }
    }
}

/// `path` opened and decompressed as its magic bytes say.
pub fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut head = [0u8; 6];
    let mut file = File::open(path)?;
    let n = read_up_to(&mut file, &mut head)?;
    file.rewind()?;
    let file = BufReader::new(file);
    Ok(match ArchiveCompression::detect(&head[..n]) {
        ArchiveCompression::None => Box::new(file),
        ArchiveCompression::Gzip => Box::new(GzDecoder::new(file)),
        ArchiveCompression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        ArchiveCompression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(file)),
        ArchiveCompression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    })
}

/// Whether `path` is a tar archive, plain or compressed (what ADD extracts): a ustar
/// magic in the first header once decompressed.
pub fn is_tar(path: &Path) -> io::Result<bool> {
    let mut head = Vec::with_capacity(512);
    let Ok(input) = open_decompressed(path) else {
        return Ok(false);
    };
    // A file that fails to decompress is not an archive; ADD copies it as it is.
    let _ = input.take(512).read_to_end(&mut head);
    Ok(head.len() >= 263 && &head[257..262] == b"ustar")
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f.txt", &b"hi\n"[..]).ok();
        b.into_inner().unwrap_or_default()
    }

    fn compressed(kind: ArchiveCompression, data: &[u8]) -> Vec<u8> {
        match kind {
            ArchiveCompression::None => data.to_vec(),
            ArchiveCompression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).ok();
                e.finish().unwrap_or_default()
            }
            ArchiveCompression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(data).ok();
                e.finish().unwrap_or_default()
            }
            ArchiveCompression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).ok();
                e.finish().unwrap_or_default()
            }
            ArchiveCompression::Zstd => zstd::encode_all(data, 1).unwrap_or_default(),
        }
    }

    #[test]
    fn every_compression_is_seen_through() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let tar = tar_bytes();
        for kind in [
            ArchiveCompression::None,
            ArchiveCompression::Gzip,
            ArchiveCompression::Bzip2,
            ArchiveCompression::Xz,
            ArchiveCompression::Zstd,
        ] {
            let data = compressed(kind, &tar);
            assert_eq!(ArchiveCompression::detect(&data), kind);
            let path = dir.path().join(format!("{kind:?}"));
            std::fs::write(&path, &data)?;
            assert!(is_tar(&path)?, "{kind:?}");
            let mut out = Vec::new();
            open_decompressed(&path)?.read_to_end(&mut out)?;
            assert_eq!(out, tar, "{kind:?}");
        }
        // Compressed, but not a tar: copied, not extracted.
        let path = dir.path().join("text.gz");
        std::fs::write(&path, compressed(ArchiveCompression::Gzip, b"just text"))?;
        assert!(!is_tar(&path)?);
        // A gzip magic with garbage after it.
        let path = dir.path().join("broken.gz");
        std::fs::write(&path, [0x1f, 0x8b, 1, 2, 3])?;
        assert!(!is_tar(&path)?);
        Ok(())
    }
}
