//! An image as a program uses it: the manifest for one platform and its
//! config, read from the store with every JSON blob verified.

use crate::config::ImageConfig;
use crate::descriptor::{Descriptor, Platform};
use crate::index::ImageIndex;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::{Store, StoreError};

/// Nesting of indexes we follow before giving up.
const MAX_INDEX_DEPTH: usize = 4;

/// A single-platform image loaded from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Descriptor of the single-platform manifest.
    pub descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub config: ImageConfig,
}

impl Image {
    /// Loads the image `descriptor` points to, choosing `platform`'s manifest
    /// when it is an index.
    pub fn load(
        store: &Store,
        descriptor: &Descriptor,
        platform: &Platform,
    ) -> Result<Image, StoreError> {
        let descriptor = Self::select(store, descriptor, platform)?;
        let manifest: ImageManifest = store.read_json(&descriptor, "image manifest")?;
        let config: ImageConfig = store.read_json(&manifest.config, "image config")?;
        Ok(Image {
            descriptor,
            manifest,
            config,
        })
    }

    /// Resolves a name or digest in the store and loads it for the host.
    pub fn load_host(store: &Store, reference: &str) -> Result<Image, StoreError> {
        let descriptor = store.resolve(reference)?;
        Self::load(store, &descriptor, &Platform::host())
    }

    /// The single-platform manifest descriptor for `platform`.
    pub fn select(
        store: &Store,
        descriptor: &Descriptor,
        platform: &Platform,
    ) -> Result<Descriptor, StoreError> {
        let mut current = descriptor.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            if media_type::is_manifest(&current.media_type) {
                return Ok(current);
            }
            if !media_type::is_index(&current.media_type) {
                return Err(StoreError::NotAnImage {
                    digest: current.digest,
                    media_type: current.media_type,
                });
            }
            let index: ImageIndex = store.read_json(&current, "image index")?;
            let next = index.manifest_for(platform).cloned().or_else(|| {
                // A nested index (rare) is followed when it is the only way on.
                let nested: Vec<_> = index
                    .manifests
                    .iter()
                    .filter(|d| media_type::is_index(&d.media_type))
                    .collect();
                match nested.as_slice() {
                    [one] => Some((*one).clone()),
                    _ => None,
                }
            });
            let Some(next) = next else {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                    .collect();
                return Err(StoreError::NoPlatform {
                    digest: current.digest,
                    platform: platform.to_string(),
                    available: if available.is_empty() {
                        "no platforms".to_owned()
                    } else {
                        available.join(", ")
                    },
                });
            };
            current = next;
        }
        Err(StoreError::NotAnImage {
            digest: descriptor.digest.clone(),
            media_type: format!("indexes nested deeper than {MAX_INDEX_DEPTH}"),
        })
    }
}
