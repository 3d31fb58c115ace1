//! `image tag`: another name for an image.

use anyhow::{Context, Result};
use skiff_builder::export::normalize_tag;
use skiff_specs::Store;

pub fn run(store: &Store, source: &str, target: &str) -> Result<()> {
    let descriptor = store
        .resolve(source)
        .or_else(|_| store.resolve(&normalize_tag(source)))?;
    store
        .tag(&normalize_tag(target), &descriptor)
        .with_context(|| format!("naming {source} {target}"))?;
    Ok(())
}
