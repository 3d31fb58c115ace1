//! The build cache: step key → the step's result (its layer blob and diff_id, or none for a
//! step that changed no files). Entries are small JSON files under `<store>/../build-cache/
//! entries`, one per step key and layer compression (a gzip layer does not stand in for a
//! zstd one), written atomically; the layers themselves are blobs of the image store. An entry
//! is trusted only when its blob is still in the store, so a store that lost blobs (gc, a
//! killed builder) only turns hits into misses.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skiff_specs::media_type::Compression;
use skiff_specs::{Descriptor, Digest, Store};

use super::stat_cache::write_replace;

/// A cached step result.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The layer and its diff_id; None when the step changed no files.
    pub layer: Option<(Descriptor, Digest)>,
    /// When the step ran (RFC 3339): a cached step keeps this time in the image history,
    /// so a fully cached rebuild makes the same image.
    pub created: Option<String>,
}

/// The cache directory beside the store (shared with cache mounts' parent).
pub fn cache_root(store: &Path) -> PathBuf {
    store
        .parent()
        .map_or_else(|| store.to_path_buf(), Path::to_path_buf)
        .join("build-cache")
}

#[derive(Debug)]
pub struct Cache {
    entries: PathBuf,
    /// --no-cache: lookups miss, results are still recorded.
    read: bool,
    /// The compression of the layers this build writes; entries are kept per compression.
    compression: Compression,
}

impl Cache {
    pub fn new(store: &Path, read: bool, compression: Compression) -> Cache {
        Cache {
            entries: cache_root(store).join("entries"),
            read,
            compression,
        }
    }

    fn path(&self, key: &Digest) -> PathBuf {
        let suffix = match self.compression {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "tar",
        };
        self.entries.join(format!("{}.{suffix}.json", key.hex()))
    }

    /// The entry for `key`, if there is a usable one.
    pub fn get(&self, store: &Store, key: &Digest) -> Option<Entry> {
        if !self.read {
            return None;
        }
        let bytes = fs::read(self.path(key)).ok()?;
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("skiff-build: ignoring a damaged build cache entry {key}: {e}");
                return None;
            }
        };
        if v["key"].as_str() != Some(key.to_string().as_str()) {
            return None;
        }
        let layer = match &v["layer"] {
            Value::Null => None,
            l => {
                let blob: Descriptor = serde_json::from_value(l["blob"].clone()).ok()?;
                let diff_id = Digest::parse(l["diff_id"].as_str()?).ok()?;
                // The blob must still be there (and whole: the store writes blobs atomically).
                let size = fs::metadata(store.blob_path(&blob.digest)).ok()?.len();
                if size != blob.size {
                    return None;
                }
                Some((blob, diff_id))
            }
        };
        let created = v["created"].as_str().map(str::to_owned);
        Some(Entry { layer, created })
    }

    /// Records `entry` for `key`.
    pub fn put(&self, key: &Digest, entry: &Entry) -> std::io::Result<()> {
        let layer = match &entry.layer {
            None => Value::Null,
            Some((blob, diff_id)) => json!({"blob": blob, "diff_id": diff_id.to_string()}),
        };
        let doc = json!({"key": key.to_string(), "layer": layer, "created": entry.created});
        // Not synced: a damaged entry does not parse or names another key, and the blob it
        // names was synced before it was written.
        write_replace(&self.path(key), doc.to_string().as_bytes())
    }
}
