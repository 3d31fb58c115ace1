//! Unpacking one image layer into a directory that overlayfs can use as a lower dir.
//!
//! Layer tars are treated as hostile: every name and hardlink target is resolved inside
//! the destination (a symlink `a -> /etc` makes `a/passwd` the layer's `etc/passwd`;
//! `..` and absolute names stay inside too), overlay xattrs in the tar are dropped, and
//! the blob's digest and size and the uncompressed tar's diff_id are checked while it is
//! read. OCI whiteouts `.wh.NAME` become overlay whiteouts (0/0 character devices) and
//! `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr; owners, modes, times and other
//! xattrs are kept; names are bytes, so names that are not UTF-8 survive.

mod entry;
mod error;
mod name;
mod root;

use std::io::{self, Read};
use std::path::Path;

use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestReader};
use crate::media_type::Compression;
use crate::store::Store;

pub use error::LayerError;

use entry::Writer;
use root::Root;

/// Unpacks the layer blob `blob` (the bytes `layer` describes, compressed as its media
/// type says) into `dest`, an existing empty directory. The blob must have `layer`'s
/// digest and size and its tar must hash to `diff_id`. On any error `dest` may hold part
/// of the layer and must be thrown away: unpack into a temp dir, as the snapshot area
/// does, and rename it into place afterwards.
pub fn unpack_layer(
    blob: impl Read,
    layer: &Descriptor,
    diff_id: &Digest,
    dest: &Path,
) -> Result<(), LayerError> {
    let digest = &layer.digest;
    let compression =
        Compression::of_layer(&layer.media_type).ok_or_else(|| LayerError::MediaType {
            layer: digest.clone(),
            media_type: layer.media_type.clone(),
        })?;
    let root = Root::open(dest).map_err(|source| LayerError::Dest {
        layer: digest.clone(),
        path: dest.to_owned(),
        source,
    })?;
    let read_err = |source| LayerError::Read {
        layer: digest.clone(),
        source,
    };
    // One byte past the size is enough to tell a longer blob.
    let mut blob = DigestReader::new(blob.take(layer.size.saturating_add(1)), digest.algorithm());
    let mut writer = Writer::new(root, digest.clone());
    let (written, actual_diff_id) = match compression.decompress(&mut blob) {
        Ok(plain) => {
            let mut plain = DigestReader::new(plain, diff_id.algorithm());
            let written = extract(&mut plain, &mut writer, digest).and_then(|()| {
                // The diff_id covers what follows the tar's end marker too.
                io::copy(&mut plain, &mut io::sink())
                    .map(drop)
                    .map_err(read_err)
            });
            (written, Some(plain.finish().1))
        }
        Err(e) => (Err(read_err(e)), None),
    };
    // The blob digest covers all of it, however much the decompressor read.
    let drained = io::copy(&mut blob, &mut io::sink());
    let (_, actual, size) = blob.finish();
    // A wrong blob explains any other failure, so it is reported first.
    if size != layer.size {
        return Err(LayerError::BlobSize {
            layer: digest.clone(),
            expected: layer.size,
            actual: size,
        });
    }
    if actual != *digest {
        return Err(LayerError::BlobDigest {
            layer: digest.clone(),
            actual,
        });
    }
    drained.map_err(read_err)?;
    written?;
    match actual_diff_id {
        Some(actual) if actual == *diff_id => writer.finish(),
        Some(actual) => Err(LayerError::DiffId {
            layer: digest.clone(),
            expected: diff_id.clone(),
            actual,
        }),
        None => writer.finish(),
    }
}

/// Unpacks the layer `layer` of `store` into `dest` (see [`unpack_layer`]).
pub fn unpack_stored_layer(
    store: &Store,
    layer: &Descriptor,
    diff_id: &Digest,
    dest: &Path,
) -> Result<(), LayerError> {
    let blob = store.open_blob(layer).map_err(|source| LayerError::Store {
        layer: layer.digest.clone(),
        source: Box::new(source),
    })?;
    unpack_layer(
        io::BufReader::with_capacity(256 << 10, blob),
        layer,
        diff_id,
        dest,
    )
}

fn extract(plain: impl Read, writer: &mut Writer, layer: &Digest) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read {
        layer: layer.clone(),
        source,
    };
    let mut archive = tar::Archive::new(plain);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        writer.entry(&mut entry)?;
    }
    Ok(())
}
