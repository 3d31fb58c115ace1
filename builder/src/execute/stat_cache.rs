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

use serde_json::{json, Value};
use skiff_specs::{Algorithm, Digest, Hasher};

use super::lock;

/// Timestamps closer than this to the check are not trusted. The kernel stamps files from a
/// coarse clock, and some filesystems keep whole (or even two) seconds.
const GRANULARITY_NS: i64 = 2_000_000_000;

/// Bumped when the file's layout changes; other versions are ignored.
const VERSION: u64 = 1;

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

    fn to_json(&self) -> Value {
        json!([
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.mode,
            self.checked_ns,
            self.digest.to_string()
        ])
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let a = v.as_array()?;
        Some(Entry {
            dev: a.first()?.as_u64()?,
            ino: a.get(1)?.as_u64()?,
            size: a.get(2)?.as_u64()?,
            mtime_ns: a.get(3)?.as_i64()?,
            ctime_ns: a.get(4)?.as_i64()?,
            mode: u32::try_from(a.get(5)?.as_u64()?).ok()?,
            checked_ns: a.get(6)?.as_i64()?,
            digest: Digest::parse(a.get(7)?.as_str()?).ok()?,
        })
    }
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
    dir.join(format!("{}.json", name.hex()))
}

impl StatCache {
    /// Loads the cache saved at `file`; a missing or unreadable one starts empty (it is
    /// only a shortcut, never trusted beyond the stat comparison).
    pub fn load(file: PathBuf) -> StatCache {
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|v| v["version"].as_u64() == Some(VERSION))
            .and_then(|v| {
                v["entries"].as_object().map(|m| {
                    m.iter()
                        .filter_map(|(k, e)| Entry::from_json(e).map(|e| (k.clone(), e)))
                        .collect()
                })
            })
            .unwrap_or_default();
        StatCache {
            file,
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        }
    }

    /// The digest of the content of the regular file `host` (`rel` in the context), read
    /// only when its stat changed or its entry is racily clean. Also returns its metadata.
    pub fn file_digest(&self, rel: &str, host: &Path) -> io::Result<(fs::Metadata, Digest)> {
        let checked_ns = now_ns();
        let meta = fs::symlink_metadata(host)?;
        if let Some(e) = lock(&self.entries).get(rel) {
            if e.matches(&meta) && !e.racily_clean() {
                return Ok((meta, e.digest.clone()));
            }
        }
        let digest = hash_file(host)?;
        // Stat again: a file that changed while being read gets no entry.
        let after = fs::symlink_metadata(host)?;
        if mtime_ns(&after) == mtime_ns(&meta) && ctime_ns(&after) == ctime_ns(&meta) {
            let entry = Entry {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.size(),
                mtime_ns: mtime_ns(&meta),
                ctime_ns: ctime_ns(&meta),
                mode: meta.mode(),
                checked_ns,
                digest: digest.clone(),
            };
            lock(&self.entries).insert(rel.to_owned(), entry);
            *lock(&self.dirty) = true;
        }
        Ok((meta, digest))
    }

    /// Writes the cache back if it changed: a temp file, fsync, rename, so a reader sees the
    /// old or the new cache, never a part.
    pub fn save(&self) -> io::Result<()> {
        if !*lock(&self.dirty) {
            return Ok(());
        }
        let entries: serde_json::Map<String, Value> = lock(&self.entries)
            .iter()
            .map(|(k, e)| (k.clone(), e.to_json()))
            .collect();
        let doc = json!({"version": VERSION, "written_ns": now_ns(), "entries": entries});
        write_atomic(&self.file, doc.to_string().as_bytes())
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
        let cache = StatCache::load(dir.path().join("cache.json"));
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
        let again = StatCache::load(dir.path().join("cache.json"));
        assert_eq!(again.file_digest("f", &file)?.1, fake);
        Ok(())
    }

    #[test]
    fn racily_clean_entries_are_hashed_again() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f");
        fs::write(&file, "aaaa")?;
        let cache = StatCache::load(dir.path().join("cache.json"));
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
}
