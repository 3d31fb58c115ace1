//! The image a container is made from: found in the store by name or
//! digest, pulled from its registry when missing (`--pull missing`, docker's
//! default), or every time (`--pull always`).

use anyhow::{bail, Context, Result};
use skiff_specs::registry::ClientOptions;
use skiff_specs::{Image, Store, StoreError};

/// docker's `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

/// Loads `reference` for the host, pulling it as `policy` says.
pub fn resolve(
    store: &Store,
    reference: &str,
    policy: PullPolicy,
    registry: &ClientOptions,
) -> Result<Image> {
    if policy != PullPolicy::Always {
        match load_local(store, reference) {
            Ok(image) => return Ok(image),
            Err(StoreError::ImageNotFound { .. }) if policy == PullPolicy::Missing => {}
            Err(StoreError::ImageNotFound { .. }) => {
                bail!("No such image: {reference}")
            }
            Err(e) => return Err(e).with_context(|| format!("image {reference}")),
        }
        eprintln!("Unable to find image '{reference}' locally");
    }
    pull(store, reference, registry)?;
    load_local(store, reference).with_context(|| format!("image {reference}"))
}

/// `reference` from the store as given, or as docker normalises it
/// (`busybox` is stored as `docker.io/library/busybox:latest` when pulled
/// or loaded from a docker archive).
pub fn load_local(store: &Store, reference: &str) -> Result<Image, StoreError> {
    match Image::load_host(store, reference) {
        Err(StoreError::ImageNotFound { .. }) => {
            match skiff_specs::registry::Reference::parse(reference) {
                Ok(full) if full.to_string() != reference => {
                    Image::load_host(store, &full.to_string())
                }
                _ => Image::load_host(store, reference),
            }
        }
        other => other,
    }
}

/// Pulls `reference` into the store.
pub fn pull(store: &Store, reference: &str, registry: &ClientOptions) -> Result<()> {
    let parsed = skiff_builder::registry::reference("image", reference)?;
    skiff_builder::registry::pull(registry, store, &parsed)
        .with_context(|| format!("cannot pull {reference}"))?;
    Ok(())
}
