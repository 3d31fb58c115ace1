//! `image prune`: unnamed images out of the index, then unused blobs out of the store.

use anyhow::Result;
use skiff_specs::Store;

use super::human_size;

pub fn run(store: &Store) -> Result<()> {
    let mut removed = 0;
    for entry in store.list()? {
        if entry.name.is_none() {
            let digest = entry.descriptor.digest.to_string();
            // A named entry for the same digest keeps the content; only unnamed ones go.
            if store
                .list()?
                .iter()
                .all(|e| e.descriptor.digest != entry.descriptor.digest || e.name.is_none())
            {
                store.remove(&digest)?;
                removed += 1;
            }
        }
    }
    let report = store.gc()?;
    println!(
        "removed {removed} unnamed images, {} blobs ({})",
        report.removed_blobs.len(),
        human_size(report.freed_bytes)
    );
    Ok(())
}
