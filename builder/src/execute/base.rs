//! Base images: a `--build-context` (OCI layout directory or docker archive), an image in
//! the store, or one pulled from its registry into the store. Their layer blobs are copied
//! into the store, so the built image is complete.

use skiff_specs::archive::import_archive;
use skiff_specs::registry::{ClientOptions, Reference};
use skiff_specs::{Descriptor, Digest, Image, ImageConfig, Platform, Store, StoreError};

use crate::error::{BuildError, Result};
use crate::options::{ContextSource, NamedContext};

/// A base image's config and layers (blobs in the store).
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The manifest's digest, which identifies the base for cache keys.
    pub manifest: Digest,
    pub config: ImageConfig,
    pub layers: Vec<(Descriptor, Digest)>,
}

/// The named context `name` refers to, if any (`name` and `name:latest` are the same).
fn find_context<'a>(contexts: &'a [NamedContext], name: &str) -> Option<&'a NamedContext> {
    let norm = |n: &str| {
        let last = n.rsplit('/').next().unwrap_or(n);
        if last.contains(':') || last.contains('@') {
            n.to_owned()
        } else {
            format!("{n}:latest")
        }
    };
    contexts
        .iter()
        .find(|c| c.name == name)
        .or_else(|| contexts.iter().find(|c| norm(&c.name) == norm(name)))
}

/// The store's image `name` (as written, or in its normalised registry form); else pulled
/// from its registry, as docker does for an image it lacks.
fn store_or_registry(store: &Store, registry: &ClientOptions, name: &str) -> Result<Image> {
    match Image::load_host(store, name) {
        Err(StoreError::ImageNotFound { .. }) => {}
        other => return Ok(other?),
    }
    let Ok(reference) = Reference::parse(name) else {
        // Not a registry reference (a digest, say): the store's answer stands.
        return Ok(Image::load_host(store, name)?);
    };
    match Image::load_host(store, &reference.to_string()) {
        Err(StoreError::ImageNotFound { .. }) => {}
        other => return Ok(other?),
    }
    let pulled = crate::registry::pull(registry, store, &reference).map_err(|e| {
        BuildError::step(
            name,
            format!(
                "not in the store at {}, and the pull failed: {e}",
                store.root().display()
            ),
        )
    })?;
    Ok(Image::load(store, &pulled.manifest, &Platform::host())?)
}

/// Loads the image `name` names.
pub fn load_base(
    store: &Store,
    contexts: &[NamedContext],
    registry: &ClientOptions,
    name: &str,
) -> Result<BaseImage> {
    let host = Platform::host();
    let Some(ctx) = find_context(contexts, name) else {
        let image = store_or_registry(store, registry, name)?;
        return from_image(store, store, image);
    };
    match &ctx.source {
        ContextSource::OciLayout { dir, tag } => {
            if !dir.join("index.json").is_file() || !dir.join("oci-layout").is_file() {
                return Err(BuildError::Option {
                    option: "--build-context",
                    reason: format!(
                        "{}={}: not an OCI layout directory (no index.json or oci-layout)",
                        ctx.name,
                        dir.display()
                    ),
                });
            }
            let source = Store::open(dir)?;
            let descriptor = match tag {
                Some(tag) => source.resolve(tag)?,
                None => {
                    let list = source.list()?;
                    match list.as_slice() {
                        [one] => one.descriptor.clone(),
                        _ => {
                            return Err(BuildError::Option {
                                option: "--build-context",
                                reason: format!(
                                    "{}: the layout holds {} images; name one with :TAG",
                                    dir.display(),
                                    list.len()
                                ),
                            })
                        }
                    }
                }
            };
            let image = Image::load(&source, &descriptor, &host)?;
            from_image(store, &source, image)
        }
        ContextSource::DockerArchive(file) => {
            let imported = import_archive(store, file, None, None)?;
            let [one] = imported.as_slice() else {
                return Err(BuildError::Option {
                    option: "--build-context",
                    reason: format!(
                        "{}: the archive holds {} images, expected one",
                        file.display(),
                        imported.len()
                    ),
                });
            };
            let image = Image::load(store, &one.descriptor, &host)?;
            from_image(store, store, image)
        }
    }
}

fn from_image(store: &Store, source: &Store, image: Image) -> Result<BaseImage> {
    let diff_ids = &image.config.rootfs.diff_ids;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(BuildError::step(
            "FROM",
            format!(
                "image {}: {} layers but {} diff_ids in its config",
                image.descriptor.digest,
                image.manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in image.manifest.layers.iter().zip(diff_ids) {
        if !std::ptr::eq(store, source) {
            let reader = source.open_blob(layer)?;
            store.put_blob(reader, Some(&layer.digest), Some(layer.size))?;
        }
        layers.push((layer.clone(), diff_id.clone()));
    }
    Ok(BaseImage {
        manifest: image.descriptor.digest.clone(),
        config: image.config,
        layers,
    })
}
