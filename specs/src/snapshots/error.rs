//! Why the snapshot area or an overlay mount failed: each error names the path, image,
//! layer or mount it is about, and the cause.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::layer::LayerError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {manifest}: {layers} layers but {diff_ids} diff_ids in its config")]
    LayerCount {
        manifest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("image {manifest}: rootfs type {kind:?} (only \"layers\" is known)")]
    RootfsType { manifest: Digest, kind: String },
    #[error("mounting overlay on {}: {source} (options: {options})", target.display())]
    Mount {
        target: PathBuf,
        options: String,
        source: io::Error,
    },
    #[error("overlay on {}: {reason}", target.display())]
    Overlay { target: PathBuf, reason: String },
    #[error("invalid pin holder {holder:?}: {reason}")]
    Holder {
        holder: String,
        reason: &'static str,
    },
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

impl SnapshotError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SnapshotError {
        let path = path.into();
        move |source| SnapshotError::Io { path, source }
    }
}
