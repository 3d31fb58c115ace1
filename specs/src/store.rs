//! skiff's local image store: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/<alg>/<hex>`) whose index entries name images with
//! the `org.opencontainers.image.ref.name` annotation.
//!
//! Crash safety: every file appears by rename of a complete, fsynced temp file
//! (`.tmp-*`) in the same directory, so a process killed at any point leaves
//! only stray temp files, which readers ignore and [`Store::gc`] removes.
//!
//! Concurrency between processes uses two flock files in the root:
//! `.index.lock` serializes read-modify-write of index.json, and `.gc.lock` is
//! held shared by anything that adds content ([`Store::lease`], staging,
//! tagging) and exclusively by gc, so gc never deletes a blob that a writer
//! is about to reference. A process holding a [`Lease`] must not call gc.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest, DigestWriter, VerifyingReader};
use crate::index::ImageIndex;
use crate::manifest::ImageManifest;
use crate::media_type::{self, ANNOTATION_REF_NAME};

/// Where skiff keeps images unless told otherwise.
pub const DEFAULT_STORE_ROOT: &str = "/var/lib/skiff/store";
/// Prefix of temp files; never a valid blob name.
pub const TEMP_PREFIX: &str = ".tmp-";
/// Largest manifest, index or config blob read into memory.
pub const MAX_JSON_BLOB: u64 = 32 << 20;

const INDEX_LOCK: &str = ".index.lock";
const GC_LOCK: &str = ".gc.lock";
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// Errors of the store. Each names the file, blob or image it is about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {expected}: content has digest {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest}: {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is not in the store at {}", root.display())]
    BlobNotFound { digest: Digest, root: PathBuf },
    #[error("no image {reference:?} in the store at {}", root.display())]
    ImageNotFound { reference: String, root: PathBuf },
    #[error("{}: invalid {what}: {source}", path.display())]
    Json {
        path: PathBuf,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("{}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("blob {digest}: {size} bytes is more than the {limit} allowed for a {what}")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("image {digest} has no manifest for {platform} (it has: {available})")]
    NoPlatform {
        digest: Digest,
        platform: String,
        available: String,
    },
    #[error("blob {digest}: media type {media_type:?} is not an image manifest or index")]
    NotAnImage { digest: Digest, media_type: String },
    #[error("{what} cannot be written as JSON: {source}")]
    Serialize {
        what: &'static str,
        source: serde_json::Error,
    },
}

impl StoreError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A named (or, after an import by digest, unnamed) entry of the store's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub name: Option<String>,
    pub descriptor: Descriptor,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed_blobs: Vec<Digest>,
    pub freed_bytes: u64,
    pub removed_temp_files: usize,
}

/// Holds off garbage collection while alive: take one before writing blobs
/// that will be referenced later (e.g. for a whole build), drop it after
/// tagging.
#[derive(Debug)]
pub struct Lease {
    _lock: Flock<File>,
}

/// A blob written and verified but not yet visible in the store.
/// Dropping it discards the content; [`StagedBlob::commit`] publishes it.
#[derive(Debug)]
pub struct StagedBlob<'a> {
    store: &'a Store,
    temp: Option<tempfile::NamedTempFile>,
    digest: Digest,
    size: u64,
    _lease: Lease,
}

impl StagedBlob<'_> {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Moves the blob into place. A blob that is already present is left as
    /// it is (same digest, same bytes).
    pub fn commit(self) -> Result<(Digest, u64)> {
        let StagedBlob {
            store,
            temp,
            digest,
            size,
            _lease,
        } = self;
        let Some(temp) = temp else {
            return Ok((digest, size));
        };
        let dest = store.blob_path(&digest);
        match temp.persist_noclobber(&dest) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io(&dest)(e.error)),
        }
        sync_dir(&store.blob_dir(digest.algorithm()))?;
        Ok((digest, size))
    }
}

/// A blob being written. Dropping it discards what was written.
#[derive(Debug)]
pub struct BlobWriter<'a> {
    store: &'a Store,
    path: PathBuf,
    writer: DigestWriter<io::BufWriter<tempfile::NamedTempFile>>,
    lease: Lease,
    /// Bytes already handed to the kernel's writeback.
    written_back: u64,
}

/// A big blob is handed to writeback in pieces of this size while it is written, so the
/// sync at its end waits for the last piece only.
const WRITEBACK_PIECE: u64 = 8 << 20;

impl<'a> BlobWriter<'a> {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.writer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writer.is_empty()
    }

    /// Flushes and syncs the content, checks it against the expected digest
    /// and size when given, and returns it staged for commit.
    pub fn finish(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<StagedBlob<'a>> {
        let BlobWriter {
            store,
            path,
            writer,
            lease,
            ..
        } = self;
        let (buffered, digest, size) = writer.finish();
        let temp = buffered
            .into_inner()
            .map_err(|e| StoreError::io(&path)(e.into_error()))?;
        if let Some(want) = expected_size.filter(|want| *want != size) {
            return Err(StoreError::SizeMismatch {
                digest: expected.cloned().unwrap_or(digest),
                expected: want,
                actual: size,
            });
        }
        if let Some(want) = expected.filter(|want| **want != digest) {
            return Err(StoreError::DigestMismatch {
                expected: want.clone(),
                actual: digest,
            });
        }
        temp.as_file().sync_all().map_err(StoreError::io(&path))?;
        Ok(StagedBlob {
            store,
            temp: Some(temp),
            digest,
            size,
            _lease: lease,
        })
    }
}

impl BlobWriter<'_> {
    /// Starts writing back what was written so far, without waiting for it.
    fn start_writeback(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        let end = self.writer.len();
        let fd = self.writer.get_ref().get_ref().as_file().as_raw_fd();
        let offset = i64::try_from(self.written_back).unwrap_or(i64::MAX);
        let len = i64::try_from(end.saturating_sub(self.written_back)).unwrap_or(0);
        // SAFETY: `fd` is the temp file this writer owns and keeps open during the call,
        // which reads only its integer arguments. Its result is only a hint: ignored.
        let _ = unsafe { libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        self.written_back = end;
        Ok(())
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.writer.write(buf)?;
        if self.writer.len().saturating_sub(self.written_back) >= WRITEBACK_PIECE {
            self.start_writeback()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// An OCI image layout directory used as skiff's image store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating an empty layout if there is none.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Store { root: root.into() };
        let sha256 = store.blob_dir(Algorithm::Sha256);
        fs::create_dir_all(&sha256).map_err(StoreError::io(&sha256))?;
        store.init_layout_file()?;
        if !store.index_path().exists() {
            let _lock = store.lock(INDEX_LOCK, FlockArg::LockExclusive)?;
            if !store.index_path().exists() {
                store.write_index(&ImageIndex::default())?;
            }
        }
        Ok(store)
    }

    /// Opens [`DEFAULT_STORE_ROOT`].
    pub fn open_default() -> Result<Self> {
        Self::open(DEFAULT_STORE_ROOT)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn layout_file(&self) -> PathBuf {
        self.root.join("oci-layout")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn blob_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.as_str())
    }

    /// Where a blob lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest.algorithm()).join(digest.hex())
    }

    fn init_layout_file(&self) -> Result<()> {
        let path = self.layout_file();
        match fs::read(&path) {
            Ok(bytes) => check_layout_file(&path, &bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let body = format!(
                    "{{\"imageLayoutVersion\":\"{}\"}}",
                    media_type::OCI_LAYOUT_VERSION
                );
                write_atomic(&self.root, &path, body.as_bytes())
            }
            Err(e) => Err(StoreError::io(&path)(e)),
        }
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Flock<File>> {
        let path = self.root.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        Flock::lock(file, arg).map_err(|(_, errno)| StoreError::Io {
            path,
            source: io::Error::from(errno),
        })
    }

    /// Blocks garbage collection until the returned lease is dropped.
    pub fn lease(&self) -> Result<Lease> {
        Ok(Lease {
            _lock: self.lock(GC_LOCK, FlockArg::LockShared)?,
        })
    }

    /// Whether the blob is present as a regular file.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(path)(e)),
        }
    }

    /// Writes `reader`'s content to a temp file and verifies it against the
    /// expected digest and size. Nothing is visible until `commit`. When the
    /// expected blob is already present, the reader is not read.
    pub fn stage_blob<R: Read>(
        &self,
        mut reader: R,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<StagedBlob<'_>> {
        let lease = self.lease()?;
        if let Some(digest) = expected {
            if let Some(size) = self.present_size(digest)? {
                if let Some(want) = expected_size.filter(|want| *want != size) {
                    return Err(StoreError::SizeMismatch {
                        digest: digest.clone(),
                        expected: want,
                        actual: size,
                    });
                }
                return Ok(StagedBlob {
                    store: self,
                    temp: None,
                    digest: digest.clone(),
                    size,
                    _lease: lease,
                });
            }
        }
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut writer = self.blob_writer_with(algorithm, lease)?;
        let limit = expected_size.map_or(u64::MAX, |s| s.saturating_add(1));
        io::copy(&mut (&mut reader).take(limit), &mut writer)
            .map_err(StoreError::io(writer.path.clone()))?;
        writer.finish(expected, expected_size)
    }

    /// A writer for a new blob (e.g. a layer being tarred and compressed):
    /// write the content, then [`BlobWriter::finish`] verifies and stages it.
    pub fn blob_writer(&self, algorithm: Algorithm) -> Result<BlobWriter<'_>> {
        let lease = self.lease()?;
        self.blob_writer_with(algorithm, lease)
    }

    fn blob_writer_with(&self, algorithm: Algorithm, lease: Lease) -> Result<BlobWriter<'_>> {
        let dir = self.blob_dir(algorithm);
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(&dir)
            .map_err(StoreError::io(&dir))?;
        Ok(BlobWriter {
            store: self,
            path: temp.path().to_owned(),
            writer: DigestWriter::new(io::BufWriter::new(temp), algorithm),
            lease,
            written_back: 0,
        })
    }

    /// Stores a blob from a reader, verified against the expected digest and
    /// size when given. A mismatch stores nothing.
    pub fn put_blob<R: Read>(
        &self,
        reader: R,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        self.stage_blob(reader, expected, expected_size)?.commit()
    }

    /// Stores a value as canonical JSON and returns its descriptor.
    pub fn put_json<T: Serialize>(&self, media_type: &str, value: &T) -> Result<Descriptor> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Serialize {
            what: "JSON blob",
            source,
        })?;
        let (digest, size) = self.put_blob(&bytes[..], None, None)?;
        Ok(Descriptor::new(media_type, digest, size))
    }

    fn present_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Err(StoreError::Layout {
                path,
                reason: "blob is not a regular file".to_owned(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path)(e)),
        }
    }

    /// Opens a blob, checking that its size is the descriptor's. The content
    /// is not hashed: use [`Store::open_blob_verified`] for that.
    pub fn open_blob(&self, descriptor: &Descriptor) -> Result<File> {
        let path = self.blob_path(&descriptor.digest);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    StoreError::BlobNotFound {
                        digest: descriptor.digest.clone(),
                        root: self.root.clone(),
                    }
                } else {
                    StoreError::io(&path)(e)
                }
            })?;
        let meta = file.metadata().map_err(StoreError::io(&path))?;
        if !meta.is_file() {
            return Err(StoreError::Layout {
                path,
                reason: "blob is not a regular file".to_owned(),
            });
        }
        if meta.len() != descriptor.size {
            return Err(StoreError::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: meta.len(),
            });
        }
        Ok(file)
    }

    /// Opens a blob whose reader fails with `InvalidData` at the end if the
    /// content does not hash to the descriptor's digest.
    pub fn open_blob_verified(&self, descriptor: &Descriptor) -> Result<VerifyingReader<File>> {
        let file = self.open_blob(descriptor)?;
        Ok(VerifyingReader::new(
            file,
            descriptor.digest.clone(),
            descriptor.size,
        ))
    }

    /// Reads a small blob whole and verifies its digest.
    pub fn read_blob(&self, descriptor: &Descriptor, what: &'static str) -> Result<Vec<u8>> {
        if descriptor.size > MAX_JSON_BLOB {
            return Err(StoreError::TooLarge {
                digest: descriptor.digest.clone(),
                size: descriptor.size,
                limit: MAX_JSON_BLOB,
                what,
            });
        }
        let mut file = self.open_blob(descriptor)?;
        let mut bytes = Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(StoreError::io(self.blob_path(&descriptor.digest)))?;
        let actual = Digest::compute(descriptor.digest.algorithm(), &bytes);
        if actual != descriptor.digest {
            return Err(StoreError::DigestMismatch {
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads and parses a JSON blob (manifest, index, config).
    pub fn read_json<T: DeserializeOwned>(
        &self,
        descriptor: &Descriptor,
        what: &'static str,
    ) -> Result<T> {
        let bytes = self.read_blob(descriptor, what)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(&descriptor.digest),
            what,
            source,
        })
    }

    /// The store's index.json.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(StoreError::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path,
            what: "image index",
            source,
        })
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = index.to_json().map_err(|source| StoreError::Serialize {
            what: "index.json",
            source,
        })?;
        write_atomic(&self.root, &self.index_path(), &bytes)
    }

    /// Read-modify-write of index.json under the index lock; the new index
    /// replaces the old one by rename, so readers see one or the other.
    fn update_index<T>(&self, change: impl FnOnce(&mut ImageIndex) -> Result<T>) -> Result<T> {
        let _lock = self.lock(INDEX_LOCK, FlockArg::LockExclusive)?;
        let mut index = self.index()?;
        let before = index.clone();
        let out = change(&mut index)?;
        if index != before {
            self.write_index(&index)?;
        }
        Ok(out)
    }

    /// Names `descriptor` (a manifest or index already in the store) `name`,
    /// replacing what the name pointed to before, which is returned.
    pub fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<Option<Descriptor>> {
        validate_name(name)?;
        // The shared gc lock keeps the manifest from being collected between
        // the check and the index update.
        let _lease = self.lease()?;
        if !self.has_blob(&descriptor.digest)? {
            return Err(StoreError::BlobNotFound {
                digest: descriptor.digest.clone(),
                root: self.root.clone(),
            });
        }
        let mut entry = descriptor.clone();
        entry.set_annotation(ANNOTATION_REF_NAME, name);
        self.update_index(|index| {
            let old = index
                .manifests
                .iter()
                .position(|d| d.ref_name() == Some(name))
                .map(|at| index.manifests.remove(at));
            index.manifests.push(entry);
            Ok(old.map(|mut d| {
                d.remove_annotation(ANNOTATION_REF_NAME);
                d
            }))
        })
    }

    /// Keeps `descriptor` in the index without a name (as an import of an
    /// untagged image does), unless an entry for its digest exists.
    pub fn add_unnamed(&self, descriptor: &Descriptor) -> Result<()> {
        let _lease = self.lease()?;
        if !self.has_blob(&descriptor.digest)? {
            return Err(StoreError::BlobNotFound {
                digest: descriptor.digest.clone(),
                root: self.root.clone(),
            });
        }
        let mut entry = descriptor.clone();
        entry.remove_annotation(ANNOTATION_REF_NAME);
        self.update_index(|index| {
            if !index.manifests.iter().any(|d| d.digest == entry.digest) {
                index.manifests.push(entry);
            }
            Ok(())
        })
    }

    /// Removes a name; the image's blobs stay until gc. Returns what the name
    /// pointed to.
    pub fn untag(&self, name: &str) -> Result<Descriptor> {
        self.update_index(|index| {
            let at = index
                .manifests
                .iter()
                .position(|d| d.ref_name() == Some(name))
                .ok_or_else(|| StoreError::ImageNotFound {
                    reference: name.to_owned(),
                    root: self.root.clone(),
                })?;
            let mut d = index.manifests.remove(at);
            d.remove_annotation(ANNOTATION_REF_NAME);
            Ok(d)
        })
    }

    /// Removes an image given by name (that name only) or by digest (every
    /// name of it). Returns the removed index entries.
    pub fn remove(&self, reference: &str) -> Result<Vec<StoredImage>> {
        self.update_index(|index| {
            let by_digest = Digest::parse(reference).ok();
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut index.manifests)
                .into_iter()
                .partition(|d| match &by_digest {
                    Some(digest) => d.digest == *digest,
                    None => d.ref_name() == Some(reference),
                });
            index.manifests = kept;
            if gone.is_empty() {
                return Err(StoreError::ImageNotFound {
                    reference: reference.to_owned(),
                    root: self.root.clone(),
                });
            }
            Ok(gone.into_iter().map(stored_image).collect())
        })
    }

    /// Finds an image by name (`name:latest` is tried for a name without a
    /// tag or digest) or by the digest of an index entry.
    pub fn resolve(&self, reference: &str) -> Result<Descriptor> {
        let index = self.index()?;
        let found = if let Ok(digest) = Digest::parse(reference) {
            index.manifests.iter().find(|d| d.digest == digest)
        } else {
            let find = |n: &str| index.manifests.iter().find(|d| d.ref_name() == Some(n));
            find(reference).or_else(|| {
                let last = reference.rsplit('/').next().unwrap_or(reference);
                if last.contains(':') || last.contains('@') {
                    None
                } else {
                    find(&format!("{reference}:latest"))
                }
            })
        };
        let mut d = found.cloned().ok_or_else(|| StoreError::ImageNotFound {
            reference: reference.to_owned(),
            root: self.root.clone(),
        })?;
        d.remove_annotation(ANNOTATION_REF_NAME);
        Ok(d)
    }

    /// Every index entry, in index order.
    pub fn list(&self) -> Result<Vec<StoredImage>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .map(stored_image)
            .collect())
    }

    /// The descriptors `root` reaches (itself, child manifests, configs,
    /// layers), each once, parents before children. Blobs that are missing
    /// are listed but not descended into.
    pub fn reachable(&self, root: &Descriptor) -> Result<Vec<Descriptor>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.walk(root, &mut seen, &mut out, true)?;
        Ok(out)
    }

    fn walk(
        &self,
        d: &Descriptor,
        seen: &mut HashSet<Digest>,
        out: &mut Vec<Descriptor>,
        tolerate_missing: bool,
    ) -> Result<()> {
        if !seen.insert(d.digest.clone()) {
            return Ok(());
        }
        out.push(d.clone());
        let children = if media_type::is_index(&d.media_type) {
            match self.read_json::<ImageIndex>(d, "image index") {
                Ok(index) => index.manifests,
                Err(StoreError::BlobNotFound { .. }) if tolerate_missing => return Ok(()),
                Err(e) => return Err(e),
            }
        } else if media_type::is_manifest(&d.media_type) {
            match self.read_json::<ImageManifest>(d, "image manifest") {
                Ok(m) => std::iter::once(m.config).chain(m.layers).collect(),
                Err(StoreError::BlobNotFound { .. }) if tolerate_missing => return Ok(()),
                Err(e) => return Err(e),
            }
        } else {
            return Ok(());
        };
        for child in &children {
            self.walk(child, seen, out, tolerate_missing)?;
        }
        Ok(())
    }

    /// Deletes blobs no index entry reaches, and stray temp files. A
    /// referenced manifest that cannot be read stops gc before it deletes
    /// anything. Waits for leases (builds, pulls, imports) to end.
    pub fn gc(&self) -> Result<GcReport> {
        let _gc = self.lock(GC_LOCK, FlockArg::LockExclusive)?;
        let mut live = HashSet::new();
        let mut order = Vec::new();
        for entry in self.index()?.manifests {
            self.walk(&entry, &mut live, &mut order, true)?;
        }
        let mut report = GcReport::default();
        for algorithm in ALGORITHMS {
            let dir = self.blob_dir(algorithm);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(StoreError::io(&dir))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let path = entry.path();
                if name.starts_with(TEMP_PREFIX) {
                    remove_file(&path)?;
                    report.removed_temp_files += 1;
                    continue;
                }
                let Ok(digest) = Digest::from_parts(algorithm, name) else {
                    continue;
                };
                if live.contains(&digest) {
                    continue;
                }
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                remove_file(&path)?;
                report.freed_bytes += size;
                report.removed_blobs.push(digest);
            }
            sync_dir(&dir)?;
        }
        // Temp files of index.json are written under the index lock.
        let _index = self.lock(INDEX_LOCK, FlockArg::LockExclusive)?;
        let entries = fs::read_dir(&self.root).map_err(StoreError::io(&self.root))?;
        for entry in entries {
            let entry = entry.map_err(StoreError::io(&self.root))?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                remove_file(&entry.path())?;
                report.removed_temp_files += 1;
            }
        }
        report.removed_blobs.sort();
        Ok(report)
    }
}

fn stored_image(mut descriptor: Descriptor) -> StoredImage {
    let name = descriptor.ref_name().map(str::to_owned);
    descriptor.remove_annotation(ANNOTATION_REF_NAME);
    StoredImage { name, descriptor }
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

/// Checks an `oci-layout` file's content.
pub(crate) fn check_layout_file(path: &Path, bytes: &[u8]) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout: Layout = serde_json::from_slice(bytes).map_err(|source| StoreError::Json {
        path: path.to_owned(),
        what: "oci-layout file",
        source,
    })?;
    if layout.version.split('.').next() != Some("1") {
        return Err(StoreError::Layout {
            path: path.to_owned(),
            reason: format!(
                "unsupported imageLayoutVersion {:?} (1.x is)",
                layout.version
            ),
        });
    }
    Ok(())
}

/// OCI ref.name grammar: components separated by `/`, each alphanumerics
/// joined by single `-._:@+` (or `--`). A digest is not a name.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 512 {
        return bad("must be 1 to 512 characters");
    }
    if Digest::parse(name).is_ok() {
        return bad("a digest cannot be used as a name");
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return bad("empty path component");
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("each /-separated part must start and end with a letter or digit");
        }
        for pair in bytes.windows(2) {
            let sep = |b: u8| b"-._:@+".contains(&b);
            if sep(pair[0]) && sep(pair[1]) && pair != b"--" {
                return bad("separators -._:@+ cannot be doubled (except --)");
            }
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:@+".contains(b))
        {
            return bad("only letters, digits and -._:@+/ are allowed");
        }
    }
    Ok(())
}

/// Writes `bytes` to `dest` by a fsynced temp file in `dir` and a rename.
pub(crate) fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(StoreError::io(dir))?;
    let temp_path = temp.path().to_owned();
    temp.write_all(bytes).map_err(StoreError::io(&temp_path))?;
    temp.as_file()
        .sync_all()
        .map_err(StoreError::io(&temp_path))?;
    temp.persist(dest)
        .map_err(|e| StoreError::io(dest)(e.error))?;
    sync_dir(dir)
}

/// fsync of a directory, so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:1.36",
            "localhost:5000/a/b--c:v1.0_x",
            "repo@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "Latest",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok} rejected");
        }
        for bad in [
            "",
            "a//b",
            "/a",
            "a/",
            "-a",
            "a b",
            "a..b",
            "../x",
            "a\nb",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn layout_file_versions() {
        let p = Path::new("oci-layout");
        assert!(check_layout_file(p, br#"{"imageLayoutVersion":"1.0.0"}"#).is_ok());
        assert!(check_layout_file(p, br#"{"imageLayoutVersion":"2.0.0"}"#).is_err());
        assert!(check_layout_file(p, b"{").is_err());
    }
}
