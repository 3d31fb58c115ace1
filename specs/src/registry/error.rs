//! Why a registry operation failed; each error names the reference, URL or file at fault.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    /// No reply: connection, TLS, DNS or protocol failure, or a timeout. `transient` when
    /// trying again may help (a reset or refused connection, a timeout; not a bad
    /// certificate or an unknown host).
    #[error("{url}: {reason}")]
    Request {
        url: String,
        reason: String,
        transient: bool,
    },
    /// A reply with an unexpected status; `message` is the registry's error text, if any.
    #[error("{url}: registry replied {status}{message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{registry}: {reason}")]
    Unauthorized { registry: String, reason: String },
    #[error("{url}: {reason}")]
    BadReply { url: String, reason: String },
    #[error("{url}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{url}: {source}")]
    Body { url: String, source: io::Error },
    /// The store's image cannot be pushed as it is.
    #[error("cannot push to {target}: {reason}")]
    Unpushable { target: String, reason: String },
    #[error("{}: {reason}", path.display())]
    Credentials { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// Worth trying again: no reply, a cut body, or a server-side failure.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Request { transient, .. } => *transient,
            RegistryError::Body { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
