//! Shared contracts between skiff's programs: the OCI image format (digests,
//! descriptors, manifests, indexes, image configs), the local image store,
//! OCI and Docker archives, layer unpacking and the layer snapshot area that
//! container root filesystems are overlays of, and image config to runtime
//! process (with the image's users resolved inside its rootfs); with the
//! feature `net`, container networking (`net`: netavark, aardvark-dns, iptables).

pub mod archive;
pub mod config;
pub mod descriptor;
pub mod digest;
#[cfg(feature = "http")]
pub mod http;
pub mod image;
pub mod index;
pub mod jsonlog;
pub mod layer;
pub mod manifest;
pub mod media_type;
pub mod monitor;
#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "http")]
pub mod registry;
pub mod rootfs;
pub mod runtime_config;
pub mod runtime_spec;
pub mod security;
pub mod snapshots;
pub mod store;
pub mod user;
pub mod xattr;

pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use descriptor::{Descriptor, Platform};
pub use digest::{
    Algorithm, Digest, DigestError, DigestReader, DigestWriter, Hasher, VerifyingReader,
};
pub use image::Image;
pub use index::ImageIndex;
pub use manifest::ImageManifest;
pub use runtime_config::{runtime_config, Overrides, RuntimeConfig, RuntimeConfigError};
pub use store::{Store, StoreError, StoredImage};

/// Default state directory of the `skiff` runtime (runc uses /run/runc).
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/skiff";
