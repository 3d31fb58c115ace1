//! Shared contracts between skiff's programs: the OCI image format (digests,
//! descriptors, manifests, indexes, image configs), the local image store,
//! OCI and Docker archives, and image config to runtime process.

pub mod archive;
pub mod config;
pub mod descriptor;
pub mod digest;
pub mod image;
pub mod index;
pub mod manifest;
pub mod media_type;
pub mod store;

pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, DigestError, DigestWriter, Hasher, VerifyingReader};
pub use image::Image;
pub use index::ImageIndex;
pub use manifest::ImageManifest;
pub use store::{Store, StoreError};

/// Default state directory of the `skiff` runtime (runc uses /run/runc).
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/skiff";
