//! `image rm`: names out of the store.

use anyhow::Result;
use skiff_builder::export::normalize_tag;
use skiff_specs::{Digest, Store};

pub fn run(store: &Store, images: &[String]) -> Result<()> {
    for image in images {
        let reference = if Digest::parse(image).is_ok() || store.resolve(image).is_err() {
            image.clone()
        } else {
            normalize_tag(image)
        };
        let removed = store.remove(&reference).or_else(|e| {
            if reference == *image {
                store.remove(&normalize_tag(image)).map_err(|_| e)
            } else {
                Err(e)
            }
        })?;
        for r in removed {
            println!(
                "Untagged: {}",
                r.name
                    .as_deref()
                    .unwrap_or(&r.descriptor.digest.to_string())
            );
        }
    }
    Ok(())
}
