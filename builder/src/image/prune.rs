//! `image prune`: unnamed images out of the index, then unused blobs and the partial
//! downloads of interrupted pulls out of the store, and the layer snapshots no image
//! needs.

use std::path::Path;

use anyhow::{Context, Result};
use skiff_builder::prune::prune_snapshots;
use skiff_specs::registry::remove_partials;
use skiff_specs::Store;

use super::human_size;

pub fn run(store: &Store, snapshots: &Path) -> Result<()> {
    let entries = store.list()?;
    let mut removed = 0;
    for entry in &entries {
        // An unnamed entry goes unless a named one holds the same image.
        let named_too = entries
            .iter()
            .any(|e| e.name.is_some() && e.descriptor.digest == entry.descriptor.digest);
        if entry.name.is_none() && !named_too {
            store.remove(&entry.descriptor.digest.to_string())?;
            removed += 1;
        }
    }
    let report = store.gc()?;
    let (partials, partial_bytes) = remove_partials(store)?;
    let gc = prune_snapshots(store, snapshots)
        .with_context(|| format!("removing unused snapshots in {}", snapshots.display()))?;
    println!(
        "removed {removed} unnamed images, {} blobs ({}), {partials} partial downloads ({}), \
         {} layer snapshots ({})",
        report.removed_blobs.len(),
        human_size(report.freed_bytes),
        human_size(partial_bytes),
        gc.removed.len(),
        human_size(gc.freed_bytes)
    );
    Ok(())
}
