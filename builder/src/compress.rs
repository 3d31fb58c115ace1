//! Layer compression: zstd (the default: several times faster than gzip at a similar ratio,
//! and multithreaded) or gzip (what older tools and `docker load` read). The choice sets
//! the blob's media type; the diff_id, the digest of the uncompressed tar, is the same
//! either way.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use skiff_specs::media_type::Compression;
use skiff_specs::{Algorithm, Descriptor, Store};

use crate::error::{BuildError, Result};

/// zstd levels we accept: the fast negative levels down to -7, 0 for zstd's default (3),
/// up to the strongest, 22.
const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -7..=22;
const ZSTD_DEFAULT_LEVEL: i32 = 3;
const GZIP_LEVELS: std::ops::RangeInclusive<i32> = 0..=9;
const GZIP_DEFAULT_LEVEL: u32 = 6;

/// How new layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip { level: u32 },
    Zstd { level: i32 },
}

impl Default for LayerCompression {
    fn default() -> Self {
        LayerCompression::Zstd {
            level: ZSTD_DEFAULT_LEVEL,
        }
    }
}

impl LayerCompression {
    /// `--compression zstd|gzip` with an optional `--compression-level`, checked against
    /// the range of that algorithm.
    pub fn parse(kind: &str, level: Option<i32>) -> Result<LayerCompression> {
        let bad = |reason: String| BuildError::Option {
            option: "--compression-level",
            reason,
        };
        match kind {
            "zstd" => match level {
                None => Ok(LayerCompression::default()),
                Some(l) if ZSTD_LEVELS.contains(&l) => Ok(LayerCompression::Zstd { level: l }),
                Some(l) => Err(bad(format!(
                    "{l} is not a zstd level (use {} to {})",
                    ZSTD_LEVELS.start(),
                    ZSTD_LEVELS.end()
                ))),
            },
            "gzip" => match level {
                None => Ok(LayerCompression::Gzip {
                    level: GZIP_DEFAULT_LEVEL,
                }),
                Some(l) => match u32::try_from(l) {
                    Ok(level) if GZIP_LEVELS.contains(&l) => Ok(LayerCompression::Gzip { level }),
                    _ => Err(bad(format!(
                        "{l} is not a gzip level (use {} to {})",
                        GZIP_LEVELS.start(),
                        GZIP_LEVELS.end()
                    ))),
                },
            },
            other => Err(BuildError::Option {
                option: "--compression",
                reason: format!("{other:?}: must be zstd or gzip"),
            }),
        }
    }

    /// The algorithm, as the specs name it.
    pub fn kind(self) -> Compression {
        match self {
            LayerCompression::Gzip { .. } => Compression::Gzip,
            LayerCompression::Zstd { .. } => Compression::Zstd,
        }
    }

    /// The OCI media type of layers compressed this way.
    pub fn media_type(self) -> &'static str {
        self.kind().oci_layer_media_type()
    }

    /// A compressing writer into `out`.
    pub fn encoder<W: Write>(self, out: W) -> io::Result<Encoder<W>> {
        match self {
            LayerCompression::Gzip { level } => Ok(Encoder::Gzip(GzEncoder::new(
                out,
                flate2::Compression::new(level),
            ))),
            LayerCompression::Zstd { level } => {
                let mut z = zstd::stream::write::Encoder::new(out, level)?;
                // zstd's output is the same for any number of workers ≥ 1, so builds stay
                // reproducible across machines with different core counts.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                z.multithread(u32::try_from(workers).unwrap_or(1))?;
                Ok(Encoder::Zstd(z))
            }
        }
    }
}

/// A compressing writer; `finish` ends the stream and returns the inner writer.
pub enum Encoder<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
        }
    }
}

/// The layer `layer` of the store as a gzip layer: itself when it is gzip already, else
/// recompressed into a new blob (`docker load` reads only gzip and plain tar layers).
pub fn gzip_layer(store: &Store, layer: &Descriptor) -> Result<Descriptor> {
    let from = Compression::of_layer(&layer.media_type).ok_or_else(|| {
        BuildError::step(
            "exporting",
            format!("{}: not a layer media type", layer.media_type),
        )
    })?;
    if from == Compression::Gzip {
        return Ok(layer.clone());
    }
    let blob_path = store.blob_path(&layer.digest);
    let werr = |e: io::Error| BuildError::io(&blob_path)(e);
    let mut input = from
        .decompress(store.open_blob_verified(layer)?)
        .map_err(werr)?;
    let gzip = LayerCompression::Gzip {
        level: GZIP_DEFAULT_LEVEL,
    };
    let mut out = gzip
        .encoder(store.blob_writer(Algorithm::Sha256)?)
        .map_err(werr)?;
    io::copy(&mut input, &mut out).map_err(werr)?;
    let (digest, size) = out.finish().map_err(werr)?.finish(None, None)?.commit()?;
    let mut gz = layer.clone();
    gz.media_type = gzip.media_type().to_owned();
    gz.digest = digest;
    gz.size = size;
    Ok(gz)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn levels_are_checked() -> Result<()> {
        assert_eq!(
            LayerCompression::parse("zstd", None)?,
            LayerCompression::Zstd { level: 3 }
        );
        assert_eq!(
            LayerCompression::parse("zstd", Some(-7))?,
            LayerCompression::Zstd { level: -7 }
        );
        assert_eq!(
            LayerCompression::parse("gzip", Some(9))?,
            LayerCompression::Gzip { level: 9 }
        );
        for (kind, level) in [("zstd", 23), ("zstd", -8), ("gzip", 10), ("gzip", -1)] {
            let err = LayerCompression::parse(kind, Some(level))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("--compression-level") && err.contains(&level.to_string()),
                "{kind} {level}: {err}"
            );
        }
        assert!(LayerCompression::parse("lz4", None).is_err());
        Ok(())
    }

    #[test]
    fn round_trips() -> io::Result<()> {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            LayerCompression::default(),
            LayerCompression::Gzip { level: 1 },
        ] {
            let mut enc = c.encoder(Vec::new())?;
            enc.write_all(&data)?;
            let packed = enc.finish()?;
            assert_eq!(Compression::sniff(&packed), c.kind());
            let mut back = Vec::new();
            c.kind()
                .decompress(packed.as_slice())?
                .read_to_end(&mut back)?;
            assert_eq!(back, data);
        }
        Ok(())
    }
}
