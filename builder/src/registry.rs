//! Registries for builds: a FROM (or `COPY --from`) image the store lacks is pulled, and
//! a built image is pushed. The settings (--insecure-registry) are the process's, set once
//! by the command line before the build starts.

use std::sync::OnceLock;

use skiff_specs::registry::{self, Client, ClientOptions, Pulled, Pushed, Reference};
use skiff_specs::{Platform, Store};

use crate::error::{BuildError, Result};

static OPTIONS: OnceLock<ClientOptions> = OnceLock::new();

/// Sets the registry settings for this process; the first call wins.
pub fn configure(options: ClientOptions) {
    let _ = OPTIONS.set(options);
}

/// A client with this process's settings.
pub fn client() -> Client {
    Client::new(OPTIONS.get().cloned().unwrap_or_default())
}

/// A reference parsed for the registry, the error naming `option`.
pub fn reference(option: &'static str, name: &str) -> Result<Reference> {
    Reference::parse(name).map_err(|e| BuildError::Option {
        option,
        reason: e.to_string(),
    })
}

/// Pulls `reference` for the host into the store.
pub fn pull(store: &Store, reference: &Reference) -> Result<Pulled> {
    eprintln!("pulling {reference}");
    let pulled = registry::pull(&client(), store, reference, &Platform::host()).map_err(|e| {
        BuildError::Step {
            step: format!("pulling {reference}"),
            reason: e.to_string(),
        }
    })?;
    eprintln!(
        "pulled {reference}: {} blobs, {} bytes",
        pulled.fetched, pulled.fetched_bytes
    );
    Ok(pulled)
}

/// Pushes the store's image `name` (a store name or digest) to `target`.
pub fn push(store: &Store, name: &str, target: &Reference) -> Result<Pushed> {
    let descriptor = store.resolve(name)?;
    registry::push(&client(), store, &descriptor, target).map_err(|e| BuildError::Step {
        step: format!("pushing {target}"),
        reason: e.to_string(),
    })
}
