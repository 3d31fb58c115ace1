//! `image pull`: an image from its registry into the store.

use anyhow::Result;
use skiff_builder::registry;
use skiff_specs::registry::ClientOptions;
use skiff_specs::Store;

pub fn run(options: &ClientOptions, store: &Store, image: &str) -> Result<()> {
    let reference = registry::reference("image", image)?;
    let pulled = registry::pull(options, store, &reference)?;
    eprintln!(
        "{} blobs fetched ({})",
        pulled.fetched,
        super::human_size(pulled.fetched_bytes)
    );
    println!("{}@{}", pulled.name, pulled.manifest.digest);
    Ok(())
}
