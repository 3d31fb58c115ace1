//! `skiff-build prune`: drops the build cache (step entries, context stat caches, ADD <url>
//! downloads, RUN cache mounts), then lets the store collect the layer blobs only the cache
//! referenced, removes the partial downloads of interrupted pulls and the layer snapshots
//! no image needs.

use std::fs;
use std::io;
use std::path::Path;

use skiff_specs::snapshots::{store_diff_ids, SnapshotGc, Snapshots};
use skiff_specs::Store;

use crate::error::{BuildError, Result};
use crate::execute::cache_root;

/// What prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub entries: usize,
    pub stat_caches: usize,
    pub cache_mounts: usize,
    /// Bytes of cache files and cache mounts.
    pub cache_bytes: u64,
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Partial downloads of interrupted pulls.
    pub partials: usize,
    pub partial_bytes: u64,
    /// Layer snapshots no image needs.
    pub snapshots: usize,
    pub snapshot_bytes: u64,
}

/// Prunes the build cache of the store at `store`, and the snapshot area `snapshots`.
/// Holds the store's gc lock (via gc) only for the blob sweep: a build running meanwhile
/// keeps its blobs (it holds a lease) and records its entries again.
pub fn prune(store: &Path, snapshots: &Path) -> Result<PruneReport> {
    let store = Store::open(store)?;
    let root = cache_root(store.root());
    let mut report = PruneReport::default();
    let (n, bytes) = clear_dir(&root.join("entries"))?;
    report.entries = n;
    report.cache_bytes += bytes;
    let (n, bytes) = clear_dir(&root.join("stat"))?;
    report.stat_caches = n;
    report.cache_bytes += bytes;
    let (_, bytes) = clear_dir(&root.join("http"))?;
    report.cache_bytes += bytes;
    let mounts = store
        .root()
        .parent()
        .map_or_else(|| store.root().to_path_buf(), Path::to_path_buf)
        .join("build-cache-mounts");
    let (n, bytes) = clear_dir(&mounts)?;
    report.cache_mounts = n;
    report.cache_bytes += bytes;
    let gc = store.gc()?;
    report.blobs = gc.removed_blobs.len();
    report.blob_bytes = gc.freed_bytes;
    let (n, bytes) = skiff_specs::registry::remove_partials(&store)?;
    report.partials = n;
    report.partial_bytes = bytes;
    let gc = prune_snapshots(&store, snapshots)?;
    report.snapshots = gc.removed.len();
    report.snapshot_bytes = gc.freed_bytes;
    Ok(report)
}

/// Removes the layer snapshots in `snapshots` that no image of `store` needs; pinned ones
/// (the engine's containers) stay. An area that does not exist is not made.
pub fn prune_snapshots(store: &Store, snapshots: &Path) -> Result<SnapshotGc> {
    if !snapshots.is_dir() {
        return Ok(SnapshotGc::default());
    }
    let area = Snapshots::open(snapshots)?;
    Ok(area.gc_with(|| store_diff_ids(store))?)
}

/// Removes the entries of `dir` (temp files of killed builders too, not counted): how many
/// and their size.
fn clear_dir(dir: &Path) -> Result<(usize, u64)> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(BuildError::io(dir)(e)),
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries {
        let entry = entry.map_err(BuildError::io(dir))?;
        let path = entry.path();
        let is_temp = entry.file_name().to_string_lossy().starts_with(".tmp-");
        let meta = fs::symlink_metadata(&path).map_err(BuildError::io(&path))?;
        if meta.is_dir() {
            bytes += tree_size(&path);
            fs::remove_dir_all(&path).map_err(BuildError::io(&path))?;
        } else {
            bytes += meta.len();
            fs::remove_file(&path).map_err(BuildError::io(&path))?;
        }
        if !is_temp {
            count += 1;
        }
    }
    Ok((count, bytes))
}

fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}
