//! Moving images between the store and files: OCI archives (a tar of an OCI
//! image layout), Docker archives (`docker save` format), and OCI layout
//! directories. Imports treat their input as hostile: every blob is checked
//! against its digest and size, names are validated, and nothing reaches the
//! store (not even blobs) unless the whole import succeeds.

mod export;
mod import;
mod tar_index;

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::store::StoreError;

pub use export::{export_docker_archive, export_docker_images, export_oci_archive};
pub use import::{import_archive, import_layout_dir};

/// Errors of exports and imports. `location` is `ARCHIVE:ENTRY` or a path.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("writing archive entry {entry}: {source}")]
    Write { entry: String, source: io::Error },
    #[error("{}: not a readable tar archive: {source}", path.display())]
    Tar { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{location}: unsafe entry: {reason}")]
    UnsafeEntry { location: String, reason: String },
    #[error("{location}: {reason}")]
    BadEntry { location: String, reason: String },
    #[error("{location}: missing")]
    Missing { location: String },
    #[error("{location}: invalid {what}: {source}")]
    Json {
        location: String,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("{location}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        location: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{location}: {actual} bytes, expected {expected}")]
    SizeMismatch {
        location: String,
        expected: u64,
        actual: u64,
    },
    #[error("{location}: {reason}")]
    Invalid { location: String, reason: String },
    #[error("{location}: no image named {tag:?} (it has: {available})")]
    TagNotFound {
        location: String,
        tag: String,
        available: String,
    },
    #[error("{location}: {source}")]
    Blob {
        location: String,
        source: StoreError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Splits `PATH[:TAG]` (buildx's `oci-layout://PATH[:TAG]` without the
/// scheme). A PATH that exists as given wins, so directories whose names
/// contain `:` still work.
pub fn parse_layout_ref(input: &str) -> (PathBuf, Option<String>) {
    if Path::new(input).exists() {
        return (PathBuf::from(input), None);
    }
    match input.rsplit_once(':') {
        Some((path, tag)) if !path.is_empty() && !tag.is_empty() && !tag.contains('/') => {
            (PathBuf::from(path), Some(tag.to_owned()))
        }
        _ => (PathBuf::from(input), None),
    }
}

/// The tag part of an image name (`busybox:1.36` → `1.36`), if any.
pub(crate) fn tag_of(name: &str) -> Option<&str> {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains('@') {
        return None;
    }
    last.rsplit_once(':').map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_refs() {
        assert_eq!(
            parse_layout_ref("/nonexistent/busybox-oci:latest"),
            (
                PathBuf::from("/nonexistent/busybox-oci"),
                Some("latest".into())
            )
        );
        assert_eq!(
            parse_layout_ref("/nonexistent/busybox-oci"),
            (PathBuf::from("/nonexistent/busybox-oci"), None)
        );
        assert_eq!(parse_layout_ref("/tmp"), (PathBuf::from("/tmp"), None));
    }

    #[test]
    fn tags() {
        assert_eq!(tag_of("busybox"), None);
        assert_eq!(tag_of("localhost:5000/busybox"), None);
        assert_eq!(tag_of("localhost:5000/busybox:1"), Some("1"));
        assert_eq!(tag_of("busybox@sha256:abc"), None);
    }
}
