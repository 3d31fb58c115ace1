//! The builder's error type: every failure names the file, instruction or option at fault.

use std::io;
use std::path::PathBuf;

use skiff_specs::archive::ArchiveError;
use skiff_specs::layer::LayerError;
use skiff_specs::snapshots::SnapshotError;
use skiff_specs::xattr::XattrError;
use skiff_specs::StoreError;

use crate::frontend::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Xattr(#[from] XattrError),
    /// A bad command-line value: `option` is the flag, `reason` why.
    #[error("{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    /// The stage stopped because another one failed.
    #[error("cancelled: another stage failed")]
    Cancelled,
    /// A step failed: `step` is the instruction as written.
    #[error("{step}: {reason}")]
    Step { step: String, reason: String },
}

impl BuildError {
    /// Maps an io::Error about `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }

    pub fn step(step: &str, reason: impl Into<String>) -> BuildError {
        BuildError::Step {
            step: step.to_owned(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
