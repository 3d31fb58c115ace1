//! A client for the OCI distribution API (Docker registry v2): pull an image into the store,
//! push one from it, log in.
//!
//! Hand-written over ureq (the same synchronous HTTP stack as [`crate::http`]) rather than
//! an async client, so every skiff program has one small HTTP stack and no async runtime.
//! Registry replies are hostile input: manifests and blobs are checked against their
//! digest and size before the store keeps them, and JSON replies are size-bounded.

mod auth;
mod credentials;
mod error;
mod ingest;
mod pull;
mod push;
mod reference;
mod session;
mod upload;

pub use credentials::{login, logout, Credentials};
pub use error::RegistryError;
pub use ingest::{remove_partials, INGEST_DIR};
pub use pull::{pull, Pulled};
pub use push::{push, Pushed};
pub use reference::{Reference, DOCKER_HUB};
pub use session::{Client, ClientOptions};

/// Media types a manifest GET accepts: single-platform manifests and indexes, OCI and
/// Docker.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or index accepted from a registry (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
