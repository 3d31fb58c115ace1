//! Why a layer could not be unpacked: each error names the layer's blob digest, and the
//! entry or destination path where there is one.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::StoreError;
use crate::xattr::XattrError;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}: {source}")]
    Store {
        layer: Digest,
        source: Box<StoreError>,
    },
    #[error("layer {layer}: media type {media_type:?} is not a layer")]
    MediaType { layer: Digest, media_type: String },
    /// Decompression or the tar format failed.
    #[error("layer {layer}: reading the layer: {source}")]
    Read { layer: Digest, source: io::Error },
    #[error("layer {layer}: blob has digest {actual}")]
    BlobDigest { layer: Digest, actual: Digest },
    #[error("layer {layer}: blob has {actual} bytes, expected {expected}")]
    BlobSize {
        layer: Digest,
        expected: u64,
        /// `expected + 1` when the blob is longer: reading stops there.
        actual: u64,
    },
    #[error(
        "layer {layer}: uncompressed content has digest {actual}, expected diff_id {expected}"
    )]
    DiffId {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// Writing one entry failed; `action` says at which step.
    #[error("layer {layer}: {}: {action}: {source}", entry.display())]
    Entry {
        layer: Digest,
        entry: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// An entry the unpacker refuses (a bad name, link or type).
    #[error("layer {layer}: {}: {reason}", entry.display())]
    BadEntry {
        layer: Digest,
        entry: PathBuf,
        reason: String,
    },
    #[error("layer {layer}: {source}")]
    Xattr { layer: Digest, source: XattrError },
    /// The destination directory itself.
    #[error("layer {layer}: {}: {source}", path.display())]
    Dest {
        layer: Digest,
        path: PathBuf,
        source: io::Error,
    },
}
