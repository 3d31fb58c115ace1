//! `image prune`: unnamed images out of the index, then unused blobs and the partial
//! downloads of interrupted pulls out of the store.

use std::fs::{self, OpenOptions};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use skiff_specs::registry::INGEST_DIR;
use skiff_specs::Store;

use super::human_size;

pub fn run(store: &Store) -> Result<()> {
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
    println!(
        "removed {removed} unnamed images, {} blobs ({}), {partials} partial downloads ({})",
        report.removed_blobs.len(),
        human_size(report.freed_bytes),
        human_size(partial_bytes)
    );
    Ok(())
}

/// Deletes partial downloads no running pull holds (a pull keeps its file locked).
fn remove_partials(store: &Store) -> Result<(usize, u64)> {
    let dir = store.root().join(INGEST_DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok((0, 0));
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries {
        let path = entry.with_context(|| dir.display().to_string())?.path();
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        let Ok(locked) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let size = locked.metadata().map(|m| m.len()).unwrap_or(0);
        if fs::remove_file(&path).is_ok() {
            count += 1;
            bytes += size;
        }
    }
    Ok((count, bytes))
}
