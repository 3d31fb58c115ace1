//! An overlay upper directory → a deterministic tar layer with OCI whiteouts, compressed
//! into the store. Entries are in byte order of their paths; ownership is numeric; xattrs
//! (except overlayfs' own `trusted.overlay.*`) become PAX `SCHILY.xattr.` records;
//! hardlinked files after the first become link entries.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use skiff_specs::store::BlobWriter;
use skiff_specs::xattr::list_xattrs;
use skiff_specs::{Algorithm, Descriptor, Digest, DigestWriter, Store};
use tar::{EntryType, Header};

use crate::compress::LayerCompression;
use crate::error::{BuildError, Result};

/// A layer whose content is written but not yet in the store: [`LayerBlob::commit`] syncs
/// it to disk and publishes it, and tells its blob digest.
#[derive(Debug)]
pub struct LayerBlob<'s> {
    /// Digest of the uncompressed tar (the config's rootfs.diff_ids entry).
    pub diff_id: Digest,
    media_type: &'static str,
    writer: BlobWriter<'s>,
}

impl LayerBlob<'_> {
    /// Syncs and publishes the blob; returns its descriptor.
    pub fn commit(self) -> Result<Descriptor> {
        let (digest, size) = self.writer.finish(None, None)?.commit()?;
        Ok(Descriptor::new(self.media_type, digest, size))
    }
}

/// Whether the upper directory holds no change at all.
pub fn is_empty(upper: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(upper).map_err(BuildError::io(upper))?;
    Ok(entries.next().is_none())
}

/// Removes directories from `upper` that overlayfs copied up but that end up unchanged:
/// empty, not opaque, and with the mode, owner, times and xattrs of the directory the
/// `lowers` (bottom first) show at that path. A RUN's mount points leave such directories.
pub fn prune_unchanged_dirs(upper: &Path, lowers: &[std::path::PathBuf]) -> Result<()> {
    prune(upper, "", lowers).map(|_| ())
}

/// Prunes below `upper/rel`; returns whether `upper/rel` itself is now empty.
fn prune(upper: &Path, rel: &str, lowers: &[std::path::PathBuf]) -> Result<bool> {
    let dir = upper.join(rel);
    let mut empty = true;
    let entries: Vec<_> = fs::read_dir(&dir)
        .map_err(BuildError::io(&dir))?
        .filter_map(|e| e.ok())
        .collect();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child_rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = upper.join(&child_rel);
        let is_dir = fs::symlink_metadata(&path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir && prune(upper, &child_rel, lowers)? && same_as_lower(&path, &child_rel, lowers)?
        {
            fs::remove_dir(&path).map_err(BuildError::io(&path))?;
        } else {
            empty = false;
        }
    }
    Ok(empty)
}

/// Whether the (empty) upper directory `path` matches what the lower layers show at `rel`.
fn same_as_lower(path: &Path, rel: &str, lowers: &[std::path::PathBuf]) -> Result<bool> {
    let xattrs_of = |p: &Path| -> Result<Vec<(String, Vec<u8>)>> {
        Ok(list_xattrs(p)?
            .into_iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .collect())
    };
    let upper_xattrs = list_xattrs(path)?;
    if upper_xattrs
        .iter()
        .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y")
    {
        return Ok(false);
    }
    let meta = fs::symlink_metadata(path).map_err(BuildError::io(path))?;
    for lower in lowers.iter().rev() {
        let candidate = lower.join(rel);
        let Ok(lm) = fs::symlink_metadata(&candidate) else {
            if hidden_below(lower, rel) {
                return Ok(false);
            }
            continue;
        };
        if !lm.is_dir() {
            return Ok(false);
        }
        return Ok(lm.mode() == meta.mode()
            && lm.uid() == meta.uid()
            && lm.gid() == meta.gid()
            && lm.mtime() == meta.mtime()
            && lm.mtime_nsec() == meta.mtime_nsec()
            && xattrs_of(&candidate)? == xattrs_of(path)?);
    }
    Ok(false)
}

/// Whether `lower` hides `rel` from the layers below: an ancestor there is an opaque
/// directory or not a directory at all (a whiteout or a file).
fn hidden_below(lower: &Path, rel: &str) -> bool {
    let mut so_far = lower.to_path_buf();
    for part in rel.split('/') {
        so_far.push(part);
        match fs::symlink_metadata(&so_far) {
            Err(_) => return false,
            Ok(m) if !m.is_dir() => return true,
            Ok(_) => {
                let opaque = list_xattrs(&so_far)
                    .unwrap_or_default()
                    .iter()
                    .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
                if opaque {
                    return true;
                }
            }
        }
    }
    false
}

/// Writes the layer for `upper` into `store`. `clamp_mtime` (SOURCE_DATE_EPOCH) caps every
/// entry's mtime.
pub fn write_layer<'s>(
    store: &'s Store,
    upper: &Path,
    clamp_mtime: Option<u64>,
    compression: LayerCompression,
) -> Result<LayerBlob<'s>> {
    let werr = |e: io::Error| BuildError::Io {
        path: upper.to_owned(),
        source: e,
    };
    let blob = store.blob_writer(Algorithm::Sha256)?;
    let packed = compression.encoder(blob).map_err(werr)?;
    let hashed = DigestWriter::new(packed, Algorithm::Sha256);
    // Tar writes headers in 512-byte pieces: batch them for the hasher and the compressor.
    let buffered = io::BufWriter::with_capacity(1 << 20, hashed);
    let mut builder = tar::Builder::new(buffered);
    let mut walker = Walker {
        clamp_mtime,
        links: HashMap::new(),
    };
    walker.dir(&mut builder, upper, "")?;
    let hashed = builder
        .into_inner()
        .map_err(werr)?
        .into_inner()
        .map_err(|e| werr(e.into_error()))?;
    let (packed, diff_id, _) = hashed.finish();
    let writer = packed.finish().map_err(werr)?;
    Ok(LayerBlob {
        diff_id,
        media_type: compression.media_type(),
        writer,
    })
}

struct Walker {
    clamp_mtime: Option<u64>,
    /// (dev, ino) of files with several links → the first path written.
    links: HashMap<(u64, u64), String>,
}

impl Walker {
    fn dir<W: Write>(&mut self, b: &mut tar::Builder<W>, host: &Path, rel: &str) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(host)
            .map_err(BuildError::io(host))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(BuildError::io(host))?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names {
            let path = host.join(&name);
            let name = name.to_string_lossy();
            let entry_rel = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            self.entry(b, &path, &entry_rel)?;
        }
        Ok(())
    }

    fn entry<W: Write>(&mut self, b: &mut tar::Builder<W>, path: &Path, rel: &str) -> Result<()> {
        let werr = |e: io::Error| BuildError::Io {
            path: path.to_owned(),
            source: e,
        };
        let meta = fs::symlink_metadata(path).map_err(BuildError::io(path))?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the file is deleted in this layer.
            let (dir, base) = match rel.rsplit_once('/') {
                Some((d, n)) => (format!("{d}/"), n),
                None => (String::new(), rel),
            };
            let mut h = self.header(&meta, EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("{dir}.wh.{base}"), io::empty())
                .map_err(werr)?;
            return Ok(());
        }
        let xattrs = list_xattrs(path)?;
        let opaque = xattrs
            .iter()
            .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
        let kept: Vec<(String, Vec<u8>)> = xattrs
            .into_iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        if !kept.is_empty() {
            b.append_pax_extensions(kept.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(werr)?;
        }
        if ft.is_dir() {
            let mut h = self.header(&meta, EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{rel}/"), io::empty())
                .map_err(werr)?;
            if opaque {
                let mut h = self.header(&meta, EntryType::Regular);
                h.set_size(0);
                h.set_mode(0o644);
                b.append_data(&mut h, format!("{rel}/.wh..wh..opq"), io::empty())
                    .map_err(werr)?;
            }
            return self.dir(b, path, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(BuildError::io(path))?;
            let mut h = self.header(&meta, EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, rel, target).map_err(werr)?;
            return Ok(());
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    let mut h = self.header(&meta, EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, rel, first).map_err(werr)?;
                    return Ok(());
                }
                self.links.insert(key, rel.to_owned());
            }
            let mut h = self.header(&meta, EntryType::Regular);
            h.set_size(meta.len());
            let file = File::open(path).map_err(BuildError::io(path))?;
            b.append_data(&mut h, rel, file).map_err(werr)?;
            return Ok(());
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else if ft.is_fifo() {
            EntryType::Fifo
        } else {
            // Sockets cannot be stored in a layer; Docker skips them too.
            return Ok(());
        };
        let mut h = self.header(&meta, kind);
        h.set_size(0);
        let rdev = meta.rdev();
        if kind != EntryType::Fifo {
            h.set_device_major(libc::major(rdev)).map_err(werr)?;
            h.set_device_minor(libc::minor(rdev)).map_err(werr)?;
        }
        b.append_data(&mut h, rel, io::empty()).map_err(werr)?;
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid().into());
        h.set_gid(meta.gid().into());
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        h.set_mtime(self.clamp_mtime.map_or(mtime, |c| mtime.min(c)));
        h
    }
}
