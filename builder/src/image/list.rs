//! `image ls`: the store's images.

use anyhow::Result;
use skiff_specs::{Image, Platform, Store};

use super::human_size;

pub fn run(store: &Store) -> Result<()> {
    println!("{:<48} {:<19} {:<25} SIZE", "NAME", "DIGEST", "CREATED");
    let host = Platform::host();
    for entry in store.list()? {
        let name = entry.name.as_deref().unwrap_or("<none>");
        let digest = entry.descriptor.digest.to_string();
        let short = digest.get(..19).unwrap_or(&digest);
        // An image whose content is incomplete (or another platform's) still gets a line.
        let (created, size) = match Image::load(store, &entry.descriptor, &host) {
            Ok(image) => (
                image.config.created.clone().unwrap_or_default(),
                human_size(image.manifest.layers.iter().map(|l| l.size).sum()),
            ),
            Err(_) => ("?".to_owned(), "?".to_owned()),
        };
        let created = created.get(..19).unwrap_or(&created).to_owned();
        println!("{name:<48} {short:<19} {created:<25} {size}");
    }
    Ok(())
}
