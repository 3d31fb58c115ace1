//! The diff_ids the images of a store need: the keep set of a snapshot gc run for that
//! store alone (`skiff-build image rm`/`prune`; the engine adds its containers').

use std::collections::HashSet;

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::{Store, StoreError};

use super::SnapshotError;

/// Every diff_id of every manifest (all platforms) the store's index reaches. Manifests
/// or configs that are not in the store (other platforms of a pulled index) are skipped;
/// one that cannot be read stops the count, so a gc never runs on a partial set.
pub fn store_diff_ids(store: &Store) -> Result<HashSet<Digest>, SnapshotError> {
    let mut keep = HashSet::new();
    for image in store.list()? {
        for d in store.reachable(&image.descriptor)? {
            if !media_type::is_manifest(&d.media_type) {
                continue;
            }
            let manifest: ImageManifest = match store.read_json(&d, "image manifest") {
                Ok(m) => m,
                Err(StoreError::BlobNotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            match store.read_json::<ImageConfig>(&manifest.config, "image config") {
                Ok(config) => keep.extend(config.rootfs.diff_ids),
                Err(StoreError::BlobNotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(keep)
}
