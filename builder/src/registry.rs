//! Registries for builds: a FROM (or `COPY --from`) image the store lacks is pulled, and
//! a built image is pushed, with the settings (--insecure-registry) the caller passes.

use skiff_specs::registry::{self, Client, ClientOptions, Pulled, Pushed, Reference};
use skiff_specs::{Platform, Store};

use crate::error::{BuildError, Result};

/// A reference parsed for the registry, the error naming `option`.
pub fn reference(option: &'static str, name: &str) -> Result<Reference> {
    Reference::parse(name).map_err(|e| BuildError::Option {
        option,
        reason: e.to_string(),
    })
}

/// Pulls `reference` for the host into the store.
pub fn pull(options: &ClientOptions, store: &Store, reference: &Reference) -> Result<Pulled> {
    eprintln!("pulling {reference}");
    let pulled = registry::pull(
        &Client::new(options.clone()),
        store,
        reference,
        &Platform::host(),
    )
    .map_err(|e| BuildError::Step {
        step: format!("pulling {reference}"),
        reason: e.to_string(),
    })?;
    eprintln!(
        "pulled {reference}: {} blobs, {} bytes",
        pulled.fetched, pulled.fetched_bytes
    );
    Ok(pulled)
}

/// Pushes the store's image `name` (a store name or digest) to `target`.
pub fn push(
    options: &ClientOptions,
    store: &Store,
    name: &str,
    target: &Reference,
) -> Result<Pushed> {
    let descriptor = store.resolve(name)?;
    registry::push(&Client::new(options.clone()), store, &descriptor, target).map_err(|e| {
        BuildError::Step {
            step: format!("pushing {target}"),
            reason: e.to_string(),
        }
    })
}
