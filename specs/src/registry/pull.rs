//! Pull: tag or digest → manifest (an index resolves to one platform) → config and layers,
//! fetched a few at a time straight into the store, each verified against its digest and
//! size before it becomes visible. Blobs already in the store are not fetched. A body cut
//! off midway is resumed with a Range request where the registry allows it.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::descriptor::{Descriptor, Platform};
use crate::digest::{Algorithm, Digest};
use crate::index::ImageIndex;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::{Store, StoreError};

use super::ingest::Ingest;
use super::session::{header, status_error, Body, Client, Session};
use super::{Reference, RegistryError, MANIFEST_ACCEPT, MAX_MANIFEST};

/// Times a blob download may be resumed after its body broke off.
const RESUMES: u32 = 4;

/// What a pull produced.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The single-platform manifest now in the store.
    pub manifest: Descriptor,
    /// The name it is stored under (the normalised reference).
    pub name: String,
    /// Blobs fetched (the others were in the store already).
    pub fetched: usize,
    /// Their bytes.
    pub fetched_bytes: u64,
}

/// Pulls `reference` for `platform` into `store` and names it there by its normalised
/// form (e.g. `docker.io/library/busybox:latest`).
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<Pulled, RegistryError> {
    let session = client.session(reference, false)?;
    // No gc between the blobs landing and the name that keeps them.
    let _lease = store.lease()?;
    let (mut bytes, mut descriptor) = fetch_manifest(
        &session,
        &reference.manifest_ref(),
        reference.digest.as_ref(),
    )?;
    if media_type::is_index(&descriptor.media_type) {
        let index: ImageIndex = parse_json(&session, &descriptor, &bytes)?;
        let chosen = index.manifest_for(platform).cloned().ok_or_else(|| {
            let available: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                .collect();
            RegistryError::BadReply {
                url: session.url(&format!("manifests/{}", reference.manifest_ref())),
                reason: format!(
                    "no manifest for {platform} (the index has: {})",
                    available.join(", ")
                ),
            }
        })?;
        let (b, d) = fetch_manifest(&session, &chosen.digest.to_string(), Some(&chosen.digest))?;
        if d.size != chosen.size {
            return Err(RegistryError::BadReply {
                url: session.url(&format!("manifests/{}", chosen.digest)),
                reason: format!("{} bytes, the index says {}", d.size, chosen.size),
            });
        }
        (bytes, descriptor) = (b, d);
    }
    if !media_type::is_manifest(&descriptor.media_type) {
        return Err(RegistryError::BadReply {
            url: session.url(&format!("manifests/{}", reference.manifest_ref())),
            reason: format!("media type {:?} is not an image", descriptor.media_type),
        });
    }
    let manifest: ImageManifest = parse_json(&session, &descriptor, &bytes)?;
    let mut blobs = vec![manifest.config.clone()];
    for layer in &manifest.layers {
        if !blobs.iter().any(|b| b.digest == layer.digest) {
            blobs.push(layer.clone());
        }
    }
    let (fetched, fetched_bytes) = fetch_blobs(&session, store, &blobs)?;
    // The manifest goes in last: once it is there, everything it names is.
    store.put_blob(&bytes[..], Some(&descriptor.digest), Some(descriptor.size))?;
    let name = reference.to_string();
    store.tag(&name, &descriptor)?;
    Ok(Pulled {
        manifest: descriptor,
        name,
        fetched,
        fetched_bytes,
    })
}

/// GETs a manifest or index by tag or digest: its bytes and a descriptor (media type from
/// the reply, digest computed and checked against `expected` and the registry's
/// Docker-Content-Digest).
fn fetch_manifest(
    session: &Session<'_>,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, Descriptor), RegistryError> {
    let url = session.url(&format!("manifests/{reference}"));
    let reply = session.send("GET", &url, &[("accept", MANIFEST_ACCEPT)], Body::Empty)?;
    if !reply.status().is_success() {
        return Err(status_error(&url, reply));
    }
    let announced = header(&reply, "docker-content-digest").and_then(|d| Digest::parse(d).ok());
    let content_type =
        header(&reply, "content-type").map(|t| t.split(';').next().unwrap_or(t).trim().to_owned());
    let mut bytes = Vec::new();
    reply
        .into_body()
        .into_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Body {
            url: url.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(RegistryError::BadReply {
            url,
            reason: format!("manifest larger than {MAX_MANIFEST} bytes"),
        });
    }
    for want in expected.iter().copied().chain(announced.as_ref()) {
        let actual = Digest::compute(want.algorithm(), &bytes);
        if actual != *want {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: want.clone(),
                actual,
            });
        }
    }
    let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
    let digest = Digest::compute(algorithm, &bytes);
    // The manifest's own mediaType wins over a generic Content-Type.
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    let known = |t: &String| media_type::is_index(t) || media_type::is_manifest(t);
    let media_type = match (declared, content_type) {
        (Some(t), _) | (None, Some(t)) if known(&t) => t,
        // Docker schema 1 and other kinds we cannot use: say so rather than misparse.
        (Some(t), _) | (None, Some(t)) if t.starts_with("application/vnd.") => {
            return Err(RegistryError::BadReply {
                url,
                reason: format!("unsupported manifest media type {t:?}"),
            })
        }
        // Plain JSON, or nothing said: OCI allows leaving mediaType out.
        _ => guess_media_type(&bytes),
    };
    let size = bytes.len() as u64;
    Ok((bytes, Descriptor::new(media_type, digest, size)))
}

/// OCI manifests and indexes may leave mediaType out: an index has `manifests`.
fn guess_media_type(bytes: &[u8]) -> String {
    let is_index = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .is_some_and(|v| v.get("manifests").is_some());
    if is_index {
        media_type::OCI_INDEX
    } else {
        media_type::OCI_MANIFEST
    }
    .to_owned()
}

fn parse_json<T: serde::de::DeserializeOwned>(
    session: &Session<'_>,
    descriptor: &Descriptor,
    bytes: &[u8],
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::BadReply {
        url: session.url(&format!("manifests/{}", descriptor.digest)),
        reason: format!("invalid {}: {e}", descriptor.media_type),
    })
}

/// Fetches the blobs the store lacks, `parallel` at a time, largest first (so the longest
/// download starts at once); returns how many it fetched and their bytes.
fn fetch_blobs(
    session: &Session<'_>,
    store: &Store,
    blobs: &[Descriptor],
) -> Result<(usize, u64), RegistryError> {
    let mut missing = Vec::new();
    for b in blobs {
        if !store.has_blob(&b.digest)? {
            missing.push(b);
        }
    }
    missing.sort_by_key(|b| std::cmp::Reverse(b.size));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let workers = session.options().parallel.clamp(1, 16).min(missing.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(blob) = missing.get(i) else { break };
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = fetch_blob(session, store, blob) {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            });
        }
    });
    match first_error.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok((missing.len(), missing.iter().map(|b| b.size).sum())),
    }
}

/// Streams one blob into the store, resuming with `Range` from what an earlier attempt
/// (or an earlier, interrupted pull) left.
fn fetch_blob(
    session: &Session<'_>,
    store: &Store,
    blob: &Descriptor,
) -> Result<(), RegistryError> {
    let Some(mut ingest) = Ingest::open(store, &blob.digest)? else {
        return Ok(());
    };
    let left_over = ingest.len() > 0;
    match download(session, blob, &mut ingest)
        .and_then(|()| Ok(ingest.finish(store, &blob.digest, blob.size)?))
    {
        // What an earlier pull left may have been wrong: once more from the start.
        Err(RegistryError::Store(StoreError::DigestMismatch { .. })) if left_over => {
            tracing::info!(digest = %blob.digest, "partial download was bad; starting again");
            let Some(mut ingest) = Ingest::open(store, &blob.digest)? else {
                return Ok(());
            };
            ingest.restart()?;
            download(session, blob, &mut ingest)?;
            Ok(ingest.finish(store, &blob.digest, blob.size)?)
        }
        other => other,
    }
}

/// GETs the part of `blob` that `ingest` lacks, again after a cut (a few times).
fn download(
    session: &Session<'_>,
    blob: &Descriptor,
    ingest: &mut Ingest,
) -> Result<(), RegistryError> {
    let url = session.url(&format!("blobs/{}", blob.digest));
    if ingest.len() > blob.size {
        ingest.restart()?;
    }
    let mut resumes = 0;
    loop {
        let offset = ingest.len();
        if offset == blob.size && offset > 0 {
            return Ok(());
        }
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 {
            &[("range", range.as_str())]
        } else {
            &[]
        };
        let reply = session.send("GET", &url, headers, Body::Empty)?;
        match reply.status().as_u16() {
            // The registry ignored the Range: start again.
            200 if offset > 0 => ingest.restart()?,
            200 => {}
            206 if offset > 0
                && header(&reply, "content-range")
                    .is_some_and(|r| r.starts_with(&format!("bytes {offset}-"))) => {}
            _ => return Err(status_error(&url, reply)),
        }
        // One byte past the size tells a too-long body from a right one.
        let room = (blob.size + 1).saturating_sub(ingest.len());
        let mut body = reply.into_body().into_reader().take(room);
        match copy(&mut body, ingest) {
            Ok(()) => return Ok(()),
            Err(CopyError::Write(source)) => return Err(RegistryError::Body { url, source }),
            Err(CopyError::Read(e)) if resumes < RESUMES => {
                resumes += 1;
                tracing::info!(%url, offset = ingest.len(), error = %e, "resuming download");
            }
            Err(CopyError::Read(source)) => return Err(RegistryError::Body { url, source }),
        }
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// io::copy that tells a broken source from a failing destination.
fn copy(from: &mut impl Read, to: &mut impl Write) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}
