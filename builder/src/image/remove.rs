//! `image rm`: names out of the store, then the layer snapshots no image needs any more
//! (the blobs stay until `image prune`).

use std::path::Path;

use anyhow::{Context, Result};
use skiff_builder::export::normalize_tag;
use skiff_builder::prune::prune_snapshots;
use skiff_specs::{Digest, Store};

use super::human_size;

pub fn run(store: &Store, images: &[String], snapshots: &Path) -> Result<()> {
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
    let gc = prune_snapshots(store, snapshots)
        .with_context(|| format!("removing unused snapshots in {}", snapshots.display()))?;
    if !gc.removed.is_empty() {
        println!(
            "Removed {} layer snapshots ({})",
            gc.removed.len(),
            human_size(gc.freed_bytes)
        );
    }
    Ok(())
}
