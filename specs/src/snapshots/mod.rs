//! The snapshot area: every image layer unpacked once, into a directory named by its
//! diff_id, and shared by every container's overlay (lower dirs) and by `skiff-build
//! image unpack`. A second container of a 250 MB image mounts in milliseconds.
//!
//! Layout (ROOT is [`DEFAULT_SNAPSHOTS_ROOT`] beside the default image store):
//!
//! ```text
//! ROOT/                      mode 0700: snapshots hold other users' set-id files
//!   .lock                    flock: shared by prepares and leases, exclusive for gc
//!   .locks/ALG-HEX           flock per layer: held while one process unpacks it
//!   .tmp-XXXXXX/             an unpack in progress: lock (held by its maker), fs/, ...
//!   empty/                   the lower dir of an image without layers
//!   pins/HOLDER              diff_ids that something besides the images needs
//!   sha256/HEX/              one complete snapshot per diff_id, made by rename only
//!     fs/                    the layer's files: an overlay lower dir
//!     snapshot.json          diff_id, blob, media type, bytes on disk, creation time
//! ```
//!
//! Concurrency and crash safety: a layer is unpacked into a fresh temp dir under the
//! layer's lock (so concurrent callers, in any process, unpack it once: the others wait
//! and find it done), checked against its blob digest, size and diff_id, synced
//! (syncfs), and renamed into place; only then does `fs/` exist under the snapshot's
//! name. A killed unpack leaves a temp whose lock nobody holds; it is never renamed and
//! is removed by the next `open`, `prepare` or `gc`. gc takes the area lock exclusively,
//! so it waits for prepares (which hold it shared until they return) and never removes a
//! snapshot one is about to hand out; it also keeps every pinned diff_id.

mod error;
mod keep;
mod lock;
mod overlay;
mod pins;
mod shorten;
mod temp;
mod usage;

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::descriptor::{Descriptor, Platform};
use crate::digest::{Algorithm, Digest};
use crate::image::Image;
use crate::layer::unpack_layer;
use crate::store::Store;

pub use error::SnapshotError;
pub use keep::store_diff_ids;
pub use overlay::{mount_overlay, mount_overlay_data, overlay_options};

use lock::Lock;
use temp::{Temp, TEMP_PREFIX};
use usage::{disk_usage, Info};

/// Where the engine keeps snapshots: beside [`crate::store::DEFAULT_STORE_ROOT`].
pub const DEFAULT_SNAPSHOTS_ROOT: &str = "/var/lib/skiff/snapshots";

const AREA_LOCK: &str = ".lock";
const LAYER_LOCKS: &str = ".locks";
const EMPTY: &str = "empty";
const PINS: &str = "pins";
const FS: &str = "fs";
const INFO: &str = "snapshot.json";
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];
const READ_BUFFER: usize = 256 << 10;

/// The snapshot area of the image store at `store_root`: `snapshots` in the store's
/// parent directory (`/var/lib/skiff/store` → [`DEFAULT_SNAPSHOTS_ROOT`]), so a store in a
/// temp dir gets its own area there too.
pub fn beside_store(store_root: &Path) -> PathBuf {
    store_root
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
        .join("snapshots")
}

/// The snapshot area at a root directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
}

/// What [`Snapshots::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotGc {
    /// The diff_ids whose snapshots went, sorted.
    pub removed: Vec<Digest>,
    pub freed_bytes: u64,
    /// Leftovers of killed unpacks.
    pub removed_temps: usize,
}

/// What [`Snapshots::prepare_layers`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The overlay lower dirs, top layer first.
    pub lowers: Vec<PathBuf>,
    /// The diff_ids this call unpacked (the others were there, or another process
    /// unpacked them meanwhile), bottom first.
    pub unpacked: Vec<Digest>,
}

/// Keeps gc away while alive (a shared hold of the area lock), e.g. from the snapshots a
/// prepare returned until they are mounted or copied. A process holding one must not
/// call gc: it would wait for itself.
#[derive(Debug)]
pub struct SnapshotLease {
    _lock: Lock,
}

impl Snapshots {
    /// Opens (creating if needed) the area at `root`. Removes leftovers of killed unpacks
    /// that no live process is working on.
    pub fn open(root: impl Into<PathBuf>) -> Result<Snapshots, SnapshotError> {
        let root = root.into();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(SnapshotError::io(&root))?;
        make_dir(&root.join(EMPTY), 0o755)?;
        let snapshots = Snapshots { root };
        // Temps whose maker died before locking them can go only while nobody is making
        // one: with the area lock held exclusively, if that is free right now.
        let area = snapshots.root.join(AREA_LOCK);
        let exclusive = lock::try_lock(lock::open(&area)?, &area, true)?;
        temp::sweep(&snapshots.root, exclusive.is_some())?;
        Ok(snapshots)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes sure every layer of the image `manifest` (a descriptor of an image manifest
    /// in `store`, or of an index: the host's manifest is used) is unpacked, each exactly
    /// once even with concurrent callers in other processes, and returns the overlay
    /// lower dirs, TOP layer first (the order overlayfs' lowerdir= wants). An image
    /// without layers gets one empty lower dir. A layer that appears twice is listed once,
    /// at its topmost place (overlayfs takes a dir once; the view is the same).
    pub fn prepare(
        &self,
        store: &Store,
        manifest: &Descriptor,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        Ok(self.prepare_layers(store, manifest)?.lowers)
    }

    /// [`Snapshots::prepare`], also saying which layers this call unpacked.
    pub fn prepare_layers(
        &self,
        store: &Store,
        manifest: &Descriptor,
    ) -> Result<Prepared, SnapshotError> {
        let _lease = self.lease()?;
        temp::sweep(&self.root, false)?;
        let image = Image::load(store, manifest, &Platform::host())?;
        let rootfs = &image.config.rootfs;
        if rootfs.kind != "layers" {
            return Err(SnapshotError::RootfsType {
                manifest: image.descriptor.digest.clone(),
                kind: rootfs.kind.clone(),
            });
        }
        let layers = &image.manifest.layers;
        if layers.len() != rootfs.diff_ids.len() {
            return Err(SnapshotError::LayerCount {
                manifest: image.descriptor.digest.clone(),
                layers: layers.len(),
                diff_ids: rootfs.diff_ids.len(),
            });
        }
        let mut unpacked = Vec::new();
        for (layer, diff_id) in layers.iter().zip(&rootfs.diff_ids) {
            let blob = || -> Result<_, SnapshotError> {
                Ok(io::BufReader::with_capacity(
                    READ_BUFFER,
                    store.open_blob(layer)?,
                ))
            };
            if self.ensure(layer, diff_id, blob)? {
                unpacked.push(diff_id.clone());
            }
        }
        Ok(Prepared {
            lowers: self.lowers(&rootfs.diff_ids),
            unpacked,
        })
    }

    /// Unpacks the layer `layer` (with uncompressed digest `diff_id`) from `blob`, a
    /// stream of its bytes (e.g. a download), unless its snapshot exists; returns its
    /// directory. Verified like everything else: a stream that is not the blob leaves
    /// nothing behind. The snapshot is not protected from gc after this returns (pin it,
    /// or hold a [`Snapshots::lease`]).
    pub fn unpack(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        blob: impl Read,
    ) -> Result<PathBuf, SnapshotError> {
        let _lease = self.lease()?;
        self.ensure(layer, diff_id, || Ok(blob))?;
        Ok(self.layer_dir(diff_id))
    }

    /// The directory of one unpacked layer (exists only once complete).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.snapshot_dir(diff_id).join(FS)
    }

    fn snapshot_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root
            .join(diff_id.algorithm().as_str())
            .join(diff_id.hex())
    }

    /// Holds gc off until the lease is dropped.
    pub fn lease(&self) -> Result<SnapshotLease, SnapshotError> {
        Ok(SnapshotLease {
            _lock: lock::lock(&self.root.join(AREA_LOCK), false)?,
        })
    }

    /// Records that `holder` (a container id, say: `[A-Za-z0-9_.-]`) needs the snapshots
    /// of `diff_ids`, replacing what it needed before: gc keeps them whatever its keep
    /// set. Pin before [`Snapshots::prepare`] and nothing can remove them in between.
    pub fn pin(&self, holder: &str, diff_ids: &[Digest]) -> Result<(), SnapshotError> {
        let _lease = self.lease()?;
        pins::write(&self.root.join(PINS), holder, diff_ids)
    }

    /// Drops `holder`'s pin; true when it had one.
    pub fn unpin(&self, holder: &str) -> Result<bool, SnapshotError> {
        pins::remove(&self.root.join(PINS), holder)
    }

    /// Every pin: holder and diff_ids, sorted by holder.
    pub fn pins(&self) -> Result<Vec<(String, Vec<Digest>)>, SnapshotError> {
        pins::read_all(&self.root.join(PINS))
    }

    /// Removes every snapshot whose diff_id is not in `keep` (nor pinned); returns what
    /// was removed and the bytes freed. Waits for running prepares and leases.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<SnapshotGc, SnapshotError> {
        self.gc_with(|| Ok(keep.clone()))
    }

    /// [`Snapshots::gc`] with the keep set computed once gc holds the area, so an image
    /// prepared just before is in it (e.g. `|| store_diff_ids(&store)`). `keep` must not
    /// use this area (prepare, lease): gc holds it exclusively.
    pub fn gc_with(
        &self,
        keep: impl FnOnce() -> Result<HashSet<Digest>, SnapshotError>,
    ) -> Result<SnapshotGc, SnapshotError> {
        let _gc = lock::lock(&self.root.join(AREA_LOCK), true)?;
        let mut keep = keep()?;
        keep.extend(pins::pinned(&self.root.join(PINS))?);
        let mut report = SnapshotGc::default();
        for (digest, path) in self.snapshot_dirs()? {
            if keep.contains(&digest) {
                continue;
            }
            let bytes = bytes_of(&path);
            self.remove_tree(&path)?;
            report.freed_bytes = report.freed_bytes.saturating_add(bytes);
            report.removed.push(digest);
        }
        for algorithm in ALGORITHMS {
            let dir = self.root.join(algorithm.as_str());
            if dir.is_dir() {
                sync_dir(&dir)?;
            }
        }
        report.removed_temps = temp::sweep(&self.root, true)?;
        // Every holder of a layer lock holds the area lock too, so none is held now.
        remove_files(&self.root.join(LAYER_LOCKS), |_| true)?;
        // Pin files half written by killed processes.
        remove_files(&self.root.join(PINS), |name| name.starts_with(TEMP_PREFIX))?;
        report.removed.sort();
        Ok(report)
    }

    /// Bytes used by each snapshot (for `system df`), sorted by diff_id.
    pub fn usage(&self) -> Result<Vec<(Digest, u64)>, SnapshotError> {
        Ok(self
            .snapshot_dirs()?
            .into_iter()
            .map(|(digest, path)| (digest, bytes_of(&path)))
            .collect())
    }

    /// Every snapshot directory, sorted by diff_id.
    fn snapshot_dirs(&self) -> Result<Vec<(Digest, PathBuf)>, SnapshotError> {
        let mut out = Vec::new();
        for algorithm in ALGORITHMS {
            let dir = self.root.join(algorithm.as_str());
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(SnapshotError::io(dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(SnapshotError::io(&dir))?;
                let name = entry.file_name();
                let Some(digest) = name
                    .to_str()
                    .and_then(|hex| Digest::from_parts(algorithm, hex).ok())
                else {
                    continue;
                };
                out.push((digest, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The lower dirs of an image with these diff_ids (bottom first): top first, each once.
    fn lowers(&self, diff_ids: &[Digest]) -> Vec<PathBuf> {
        let mut seen = HashSet::new();
        let mut lowers: Vec<PathBuf> = diff_ids
            .iter()
            .rev()
            .filter(|d| seen.insert(*d))
            .map(|d| self.layer_dir(d))
            .collect();
        if lowers.is_empty() {
            lowers.push(self.root.join(EMPTY));
        }
        lowers
    }

    /// Makes the snapshot of `diff_id` from the blob `blob` opens, unless it exists. True
    /// when this call made it. The caller holds the area lock shared.
    fn ensure<R: Read>(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        blob: impl FnOnce() -> Result<R, SnapshotError>,
    ) -> Result<bool, SnapshotError> {
        let done = self.layer_dir(diff_id);
        if done.is_dir() {
            return Ok(false);
        }
        let locks = self.root.join(LAYER_LOCKS);
        make_dir(&locks, 0o700)?;
        let lock_name = format!("{}-{}", diff_id.algorithm(), diff_id.hex());
        let _unpacking = lock::lock(&locks.join(lock_name), true)?;
        if done.is_dir() {
            return Ok(false);
        }
        let temp = Temp::create(&self.root)?;
        let files = temp.path().join(FS);
        make_dir(&files, 0o755)?;
        unpack_layer(blob()?, layer, diff_id, &files)?;
        let info = Info {
            diff_id: diff_id.clone(),
            blob: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            bytes: disk_usage(&files).map_err(SnapshotError::io(&files))?,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let info_path = temp.path().join(INFO);
        let text = serde_json::to_vec(&info).map_err(|e| SnapshotError::Io {
            path: info_path.clone(),
            source: e.into(),
        })?;
        fs::write(&info_path, text).map_err(SnapshotError::io(&info_path))?;
        // All of it on disk before its name appears: a crash never leaves a snapshot
        // that is there but not whole.
        let dir = File::open(temp.path()).map_err(SnapshotError::io(temp.path()))?;
        nix::unistd::syncfs(dir.as_raw_fd())
            .map_err(|e| SnapshotError::io(temp.path())(e.into()))?;
        let dest = self.snapshot_dir(diff_id);
        let parent = self.root.join(diff_id.algorithm().as_str());
        make_dir(&parent, 0o700)?;
        if dest.exists() && !done.is_dir() {
            // Damaged by hand (no fs/): out of the way.
            self.remove_tree(&dest)?;
        }
        let made = temp.publish(&dest)?;
        sync_dir(&parent)?;
        if !made && !done.is_dir() {
            return Err(SnapshotError::Corrupt {
                path: dest,
                reason: "exists but has no fs/".to_owned(),
            });
        }
        Ok(made)
    }

    /// Removes a directory tree: first renamed to a temp name, so a removal cut short
    /// never leaves part of a snapshot under its name.
    fn remove_tree(&self, path: &Path) -> Result<(), SnapshotError> {
        let grave = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(&self.root)
            .map_err(SnapshotError::io(&self.root))?;
        // rename(2) replaces an empty directory.
        fs::rename(path, grave.path()).map_err(SnapshotError::io(path))?;
        let grave = grave.keep();
        fs::remove_dir_all(&grave).map_err(SnapshotError::io(&grave))
    }
}

/// The bytes a snapshot takes: as recorded, else counted.
fn bytes_of(snapshot: &Path) -> u64 {
    Info::read(&snapshot.join(INFO))
        .map(|i| i.bytes)
        .or_else(|| disk_usage(snapshot).ok())
        .unwrap_or(0)
}

/// Makes the directory `path` (its parent exists) with `mode`, whatever the umask; an
/// existing one is left as it is.
fn make_dir(path: &Path, mode: u32) -> Result<(), SnapshotError> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(SnapshotError::io(path)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SnapshotError::io(path)(e)),
    }
}

/// Removes the files of `dir` whose names `pick` chooses.
fn remove_files(dir: &Path, pick: impl Fn(&str) -> bool) -> Result<(), SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SnapshotError::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(SnapshotError::io(dir))?;
        if !pick(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SnapshotError::io(path)(e)),
        }
    }
    Ok(())
}

/// fsync of a directory, so a rename in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SnapshotError::io(dir))
}
