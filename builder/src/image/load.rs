//! `image load`: the images of an archive into the store.

use std::path::Path;

use anyhow::{Context, Result};
use skiff_specs::archive::import_archive;
use skiff_specs::Store;

pub fn run(store: &Store, input: &Path) -> Result<()> {
    let imported = import_archive(store, input, None, None)
        .with_context(|| format!("loading {}", input.display()))?;
    for image in imported {
        match image.name {
            Some(name) => println!("Loaded image: {name}"),
            None => println!("Loaded image ID: {}", image.descriptor.digest),
        }
    }
    Ok(())
}
