//! Content digests of build-context files, with a stat cache so unchanged files are not read
//! again: per context directory, path → (dev, ino, size, mtime_ns, ctime_ns, mode, digest,
//! and when the entry was checked). A file whose stat matches its entry reuses the digest,
//! unless the entry is "racily clean" (git's rule): its mtime or ctime is not older than the
//! time it was checked minus the timestamp granularity, so a change made in the same tick as
//! the check could hide behind an equal mtime; those are hashed again. An edit that restores
//! size and mtime (`touch -r`) still changes ctime, so it is always seen.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use skiff_specs::{Algorithm, Digest, Hasher};

use super::lock;

/// Timestamps closer than this to the check are not trusted. The kernel stamps files from a
/// coarse clock, and some filesystems keep whole (or even two) seconds.
const GRANULARITY_NS: i64 = 2_000_000_000;

/// The file starts with this and the layout's version (bumped when it changes; other
/// versions are ignored) and ends with the hex sha256 of what comes before: a damaged file
/// is never read.
const MAGIC: &[u8; 12] = b"skiff-stat\0\0";
const VERSION: u32 = 2;
/// Fixed part of a record: dev, ino, size, mtime_ns, ctime_ns, mode, checked_ns, hex digest.
const FIXED: usize = 8 * 5 + 4 + 8 + 64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    mode: u32,
    checked_ns: i64,
    digest: Digest,
}

impl Entry {
    fn matches(&self, meta: &fs::Metadata) -> bool {
        self.dev == meta.dev()
            && self.ino == meta.ino()
            && self.size == meta.size()
            && self.mtime_ns == mtime_ns(meta)
            && self.ctime_ns == ctime_ns(meta)
            && self.mode == meta.mode()
    }

    fn racily_clean(&self) -> bool {
        let limit = self.checked_ns - GRANULARITY_NS;
        self.mtime_ns >= limit || self.ctime_ns >= limit
    }

    fn write(&self, rel: &str, out: &mut Vec<u8>) {
        let len = u32::try_from(rel.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(rel.as_bytes());
        for v in [self.dev, self.ino, self.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.mtime_ns, self.ctime_ns] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.mode.to_le_bytes());
        out.extend_from_slice(&self.checked_ns.to_le_bytes());
        out.extend_from_slice(self.digest.hex().as_bytes());
    }

    /// The record at the start of `input` and the rest; None when it is malformed.
    fn read(input: &[u8]) -> Option<(String, Entry, &[u8])> {
        let (len, rest) = input.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len.checked_add(FIXED)? {
            return None;
        }
        let (rel, rest) = rest.split_at(len);
        let rel = std::str::from_utf8(rel).ok()?.to_owned();
        let (fixed, rest) = rest.split_at(FIXED);
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(fixed.get(i..i + 8)?.try_into().ok()?))
        };
        let i64_at = |i: usize| -> Option<i64> {
            Some(i64::from_le_bytes(fixed.get(i..i + 8)?.try_into().ok()?))
        };
        let hex = std::str::from_utf8(fixed.get(52..116)?).ok()?;
        let entry = Entry {
            dev: u64_at(0)?,
            ino: u64_at(8)?,
            size: u64_at(16)?,
            mtime_ns: i64_at(24)?,
            ctime_ns: i64_at(32)?,
            mode: u32::from_le_bytes(fixed.get(40..44)?.try_into().ok()?),
            checked_ns: i64_at(44)?,
            digest: Digest::from_parts(Algorithm::Sha256, hex).ok()?,
        };
        Some((rel, entry, rest))
    }
}

/// The entries of a saved cache; None when it is not a whole file of this version.
fn parse(bytes: &[u8]) -> Option<HashMap<String, Entry>> {
    let body_len = bytes.len().checked_sub(64)?;
    let (body, sum) = bytes.split_at(body_len);
    if Digest::sha256_of(body).hex().as_bytes() != sum {
        return None;
    }
    let rest = body.strip_prefix(MAGIC.as_slice())?;
    let (version, mut rest) = rest.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != VERSION {
        return None;
    }
    // Room for all records (paths are rarely shorter than this), so the map never grows.
    let mut entries = HashMap::with_capacity(rest.len() / (4 + 16 + FIXED));
    while !rest.is_empty() {
        let (rel, entry, more) = Entry::read(rest)?;
        entries.insert(rel, entry);
        rest = more;
    }
    Some(entries)
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn ctime_ns(meta: &fs::Metadata) -> i64 {
    meta.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec())
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The stat cache of one context directory.
#[derive(Debug)]
pub struct StatCache {
    /// Where it is saved.
    file: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    /// Whether anything changed since loading.
    dirty: Mutex<bool>,
}

/// The stat cache file of `context` under `dir`: named by a hash of the context's path.
pub fn file_for(dir: &Path, context: &Path) -> PathBuf {
    let abs = fs::canonicalize(context).unwrap_or_else(|_| context.to_path_buf());
    let name = Digest::sha256_of(abs.as_os_str().as_encoded_bytes());
    dir.join(format!("{}.bin", name.hex()))
}

impl StatCache {
    /// Loads the cache saved at `file`; a missing or unreadable one starts empty (it is
    /// only a shortcut, never trusted beyond the stat comparison).
    pub fn load(file: PathBuf) -> StatCache {
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| parse(&b))
            .unwrap_or_default();
        StatCache {
            file,
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        }
    }

    /// `digest` with the file's metadata read here, which it returns too.
    #[cfg(test)]
    pub fn file_digest(&self, rel: &str, host: &Path) -> io::Result<(fs::Metadata, Digest)> {
        let meta = fs::symlink_metadata(host)?;
        let digest = self.digest(rel, host, &meta)?;
        Ok((meta, digest))
    }

    /// The digest of the content of the regular file `host` (`rel` in the context), whose
    /// metadata the caller has just read: read only when its stat changed or its entry is
    /// racily clean.
    pub fn digest(&self, rel: &str, host: &Path, meta: &fs::Metadata) -> io::Result<Digest> {
        if let Some(e) = lock(&self.entries).get(rel) {
            if e.matches(meta) && !e.racily_clean() {
                return Ok(e.digest.clone());
            }
        }
        // Taken before the content is read: an edit after this time makes the entry racily
        // clean (or changes the stat), so it cannot hide behind the recorded digest.
        let checked_ns = now_ns();
        let digest = hash_file(host)?;
        // Stat again: a file that changed since `meta` gets no entry.
        let after = fs::symlink_metadata(host)?;
        if mtime_ns(&after) == mtime_ns(meta)
            && ctime_ns(&after) == ctime_ns(meta)
            && after.size() == meta.size()
            && after.ino() == meta.ino()
        {
            let entry = Entry {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.size(),
                mtime_ns: mtime_ns(meta),
                ctime_ns: ctime_ns(meta),
                mode: meta.mode(),
                checked_ns,
                digest: digest.clone(),
            };
            lock(&self.entries).insert(rel.to_owned(), entry);
            *lock(&self.dirty) = true;
        }
        Ok(digest)
    }

    /// Writes the cache back if it changed: a temp file renamed into place, so a reader sees
    /// the old or the new cache, never a part.
    pub fn save(&self) -> io::Result<()> {
        if !*lock(&self.dirty) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for (rel, e) in lock(&self.entries).iter() {
            e.write(rel, &mut out);
        }
        let sum = Digest::sha256_of(&out);
        out.extend_from_slice(sum.hex().as_bytes());
        // No fsync: a file a crash damaged fails its checksum, and an older one is as good
        // (entries are only trusted when the stat matches).
        write_replace(&self.file, &out)?;
        // The JSON cache of earlier versions, if any, is dead weight.
        let legacy = self.file.with_extension("json");
        if legacy != self.file {
            let _ = fs::remove_file(legacy);
        }
        Ok(())
    }
}

/// sha256 of a file's content.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// Replaces `path` with `bytes` through a temp file and a rename (a reader sees the old or
/// the new content, never a part), without syncing: for files whose readers detect a
/// damaged or stale copy and only lose time on it.
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `path` atomically: a temp file in the same directory (named `.tmp-*`, so sweeps
/// know it), fsynced, renamed over `path`, the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{Context, Result};
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;

    /// Sets the file's atime and mtime to an old time (ctime becomes now).
    fn age(path: &Path) -> Result<()> {
        let old = TimeSpec::new(978_307_200, 0);
        utimensat(None, path, &old, &old, UtimensatFlags::FollowSymlink)?;
        Ok(())
    }

    /// Pretends the entry of `rel` was checked long after its timestamps (not racily clean)
    /// and records a digest no file has, so a reuse shows.
    fn settle(cache: &StatCache, rel: &str) -> Result<Digest> {
        let fake = Digest::sha256_of(b"not the content");
        let mut entries = lock(&cache.entries);
        let e = entries.get_mut(rel).context("no entry")?;
        e.checked_ns = i64::MAX / 2;
        e.digest = fake.clone();
        Ok(fake)
    }

    #[test]
    fn unchanged_files_reuse_their_digest_and_edits_are_seen() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f");
        fs::write(&file, "aaaa")?;
        age(&file)?;
        let cache = StatCache::load(dir.path().join("cache.bin"));
        let real = cache.file_digest("f", &file)?.1;
        assert_eq!(real, Digest::sha256_of(b"aaaa"));

        // A clean entry with the same stat: the file is not read.
        let fake = settle(&cache, "f")?;
        assert_eq!(cache.file_digest("f", &file)?.1, fake);

        // Same size, same mtime, other content: ctime differs (a few kernel ticks later),
        // so it is read again.
        std::thread::sleep(std::time::Duration::from_millis(30));
        fs::write(&file, "bbbb")?;
        age(&file)?;
        assert_eq!(cache.file_digest("f", &file)?.1, Digest::sha256_of(b"bbbb"));

        // Saved and loaded again, the entry still matches.
        settle(&cache, "f")?;
        *lock(&cache.dirty) = true;
        cache.save()?;
        let again = StatCache::load(dir.path().join("cache.bin"));
        assert_eq!(again.file_digest("f", &file)?.1, fake);
        Ok(())
    }

    #[test]
    fn racily_clean_entries_are_hashed_again() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f");
        fs::write(&file, "aaaa")?;
        let cache = StatCache::load(dir.path().join("cache.bin"));
        cache.file_digest("f", &file)?;
        // Checked right after the write: mtime and ctime are too close to trust.
        {
            let mut entries = lock(&cache.entries);
            let e = entries.get_mut("f").context("no entry")?;
            assert!(e.racily_clean());
            e.digest = Digest::sha256_of(b"not the content");
        }
        assert_eq!(cache.file_digest("f", &file)?.1, Digest::sha256_of(b"aaaa"));
        Ok(())
    }

    #[test]
    fn a_damaged_cache_file_is_not_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f");
        fs::write(&file, "aaaa")?;
        age(&file)?;
        let saved = dir.path().join("cache.bin");
        let cache = StatCache::load(saved.clone());
        cache.file_digest("f", &file)?;
        cache.save()?;
        assert_eq!(lock(&StatCache::load(saved.clone()).entries).len(), 1);
        let mut bytes = fs::read(&saved)?;
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(&saved, &bytes)?;
        assert!(lock(&StatCache::load(saved.clone()).entries).is_empty());
        fs::write(&saved, &bytes[..mid])?;
        assert!(lock(&StatCache::load(saved).entries).is_empty());
        Ok(())
    }
}
