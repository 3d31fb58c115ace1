//! Push: an image of the store (a manifest, or an index and those of its manifests the store
//! holds) to a repository. Blobs go first, a few at a time, as they are in the store
//! (gzip, zstd or plain layers keep their media types); manifests go last, each with its
//! own media type, so the registry never names content it lacks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::index::ImageIndex;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::Store;

use super::session::{header, status_error, Body, Client, Session};
use super::upload::{send_blob, Sent};
use super::{Reference, RegistryError};

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// The digest of the top manifest or index, as the registry now serves it.
    pub digest: Option<Digest>,
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
}

/// Pushes the store's image `descriptor` to `target` (its tag, or by digest when it has
/// none).
pub fn push(
    client: &Client,
    store: &Store,
    descriptor: &Descriptor,
    target: &Reference,
) -> Result<Pushed, RegistryError> {
    let session = client.session(target, true)?;
    // Manifests to put, children first, and the blobs they need.
    let mut manifests = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut add_manifest =
        |d: &Descriptor, blobs: &mut Vec<Descriptor>| -> Result<(), RegistryError> {
            let m: ImageManifest = store.read_json(d, "image manifest")?;
            for b in std::iter::once(&m.config).chain(&m.layers) {
                if !blobs.iter().any(|have| have.digest == b.digest) {
                    blobs.push(b.clone());
                }
            }
            manifests.push(d.clone());
            Ok(())
        };
    if media_type::is_index(&descriptor.media_type) {
        let index: ImageIndex = store.read_json(descriptor, "image index")?;
        for child in &index.manifests {
            if !media_type::is_manifest(&child.media_type) {
                continue;
            }
            if !store.has_blob(&child.digest)? {
                return Err(RegistryError::Unpushable {
                    target: target.to_string(),
                    reason: format!(
                        "the index names manifest {} ({}) which is not in the store; \
                         push a single platform instead",
                        child.digest,
                        child
                            .platform
                            .as_ref()
                            .map_or("?".to_owned(), ToString::to_string)
                    ),
                });
            }
            add_manifest(child, &mut blobs)?;
        }
        manifests.push(descriptor.clone());
    } else if media_type::is_manifest(&descriptor.media_type) {
        add_manifest(descriptor, &mut blobs)?;
    } else {
        return Err(RegistryError::Unpushable {
            target: target.to_string(),
            reason: format!(
                "{:?} is not an image manifest or index",
                descriptor.media_type
            ),
        });
    }
    let mounts = mount_sources(store, target)?;
    let mut pushed = send_blobs(&session, store, &blobs, &mounts)?;

    let last = manifests.len().saturating_sub(1);
    for (i, m) in manifests.iter().enumerate() {
        let tag = if i == last { target.tag.clone() } else { None };
        let digest = put_manifest(&session, store, m, tag.as_deref())?;
        if i == last {
            pushed.digest = Some(digest);
        }
    }
    Ok(pushed)
}

/// Repositories of the same registry that the store's names say hold each blob: the
/// candidates for a cross-repository mount.
fn mount_sources(
    store: &Store,
    target: &Reference,
) -> Result<HashMap<Digest, String>, RegistryError> {
    let mut out = HashMap::new();
    for image in store.list()? {
        let Some(name) = image.name.as_deref() else {
            continue;
        };
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        if r.registry != target.registry || r.repository == target.repository {
            continue;
        }
        if !media_type::is_manifest(&image.descriptor.media_type) {
            continue;
        }
        let Ok(m) = store.read_json::<ImageManifest>(&image.descriptor, "image manifest") else {
            continue;
        };
        for b in std::iter::once(&m.config).chain(&m.layers) {
            out.entry(b.digest.clone())
                .or_insert_with(|| r.repository.clone());
        }
    }
    Ok(out)
}

fn send_blobs(
    session: &Session<'_>,
    store: &Store,
    blobs: &[Descriptor],
    mounts: &HashMap<Digest, String>,
) -> Result<Pushed, RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let outcome = Mutex::new((Pushed::default(), None));
    let workers = session.options().parallel.clamp(1, 16).min(blobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(blob) = blobs.get(i) else { break };
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let result = send_blob(
                    session,
                    store,
                    blob,
                    mounts.get(&blob.digest).map(String::as_str),
                );
                let Ok(mut out) = outcome.lock() else { break };
                match result {
                    Ok(Sent::AlreadyThere) => out.0.skipped += 1,
                    Ok(Sent::Mounted) => out.0.mounted += 1,
                    Ok(Sent::Uploaded) => out.0.uploaded += 1,
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        out.1.get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match outcome.into_inner() {
        Ok((_, Some(e))) => Err(e),
        Ok((pushed, None)) => Ok(pushed),
        Err(_) => Err(RegistryError::BadReply {
            url: session.url(""),
            reason: "an upload thread panicked".to_owned(),
        }),
    }
}

/// PUTs a manifest's exact bytes under `tag`, or its digest; returns the digest.
fn put_manifest(
    session: &Session<'_>,
    store: &Store,
    manifest: &Descriptor,
    tag: Option<&str>,
) -> Result<Digest, RegistryError> {
    let bytes = store.read_blob(manifest, "manifest")?;
    let reference = tag.map_or_else(|| manifest.digest.to_string(), str::to_owned);
    let url = session.url(&format!("manifests/{reference}"));
    let reply = session.send(
        "PUT",
        &url,
        &[("content-type", manifest.media_type.as_str())],
        Body::Bytes(&bytes),
    )?;
    if reply.status().as_u16() != 201 {
        return Err(status_error(&url, reply));
    }
    if let Some(d) = header(&reply, "docker-content-digest").and_then(|d| Digest::parse(d).ok()) {
        if d != manifest.digest {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: manifest.digest.clone(),
                actual: d,
            });
        }
    }
    super::session::drain(reply);
    Ok(manifest.digest.clone())
}
