//! Blob downloads that survive the process: content goes to `STORE/ingest/ALG-HEX.partial`
//! (locked while written, so two pulls never write one file), is hashed as it arrives, and
//! only after its digest and size check out is it renamed into the store's blobs. A pull
//! that was killed finds the partial file and asks the registry for the rest.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use crate::digest::{Digest, Hasher};
use crate::store::{Store, StoreError};

/// The directory of partial downloads under the store root.
pub const INGEST_DIR: &str = "ingest";

/// A partial blob being written.
pub(crate) struct Ingest {
    file: Flock<File>,
    path: PathBuf,
    hasher: Hasher,
    len: u64,
}

fn io_err(path: &std::path::Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Ingest {
    /// Opens (or creates) the partial file of `digest`, waiting for another process that
    /// is writing it. None when the blob is in the store by then. The bytes already there
    /// are hashed again, so the final check covers them.
    pub fn open(store: &Store, digest: &Digest) -> Result<Option<Ingest>, StoreError> {
        let dir = store.root().join(INGEST_DIR);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(format!("{}-{}.partial", digest.algorithm(), digest.hex()));
        // A file unlinked while we waited for its lock (by a prune) is not the one to use.
        let mut file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io_err(&path))?;
            let file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
                StoreError::Io {
                    path: path.clone(),
                    source: io::Error::from(errno),
                }
            })?;
            let held = file.metadata().map_err(io_err(&path))?;
            match fs::symlink_metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => break file,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path)(e)),
            }
        };
        if store.has_blob(digest)? {
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
        let mut hasher = Hasher::new(digest.algorithm());
        let mut buf = vec![0u8; 256 << 10];
        let mut len = 0;
        file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
        loop {
            let n = file.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        Ok(Some(Ingest {
            file,
            path,
            hasher,
            len,
        }))
    }

    /// Bytes held so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Drops what was written (the registry sent the whole blob again).
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(io_err(&self.path))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err(&self.path))?;
        self.hasher = Hasher::new(self.hasher.algorithm());
        self.len = 0;
        Ok(())
    }

    /// Checks the content against `digest` and `size` and moves it into the store. Content
    /// that does not match is deleted: it can never become right.
    pub fn finish(self, store: &Store, digest: &Digest, size: u64) -> Result<(), StoreError> {
        let Ingest {
            file,
            path,
            hasher,
            len,
        } = self;
        if len != size {
            let _ = fs::remove_file(&path);
            return Err(StoreError::SizeMismatch {
                digest: digest.clone(),
                expected: size,
                actual: len,
            });
        }
        let actual = hasher.finish();
        if actual != *digest {
            let _ = fs::remove_file(&path);
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        file.sync_all().map_err(io_err(&path))?;
        let dest = store.blob_path(digest);
        let dir = dest.parent().map(PathBuf::from).unwrap_or_default();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        // Held until the rename: no other process writes this partial file meanwhile.
        fs::rename(&path, &dest).map_err(io_err(&dest))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        drop(file);
        Ok(())
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Deletes the partial downloads no running pull holds (a pull keeps its file locked):
/// how many, and their bytes.
pub fn remove_partials(store: &Store) -> Result<(usize, u64), StoreError> {
    let dir = store.root().join(INGEST_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries {
        let path = entry.map_err(io_err(&dir))?.path();
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        let Ok(locked) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let size = locked.metadata().map_or(0, |m| m.len());
        if fs::remove_file(&path).is_ok() {
            count += 1;
            bytes += size;
        }
    }
    Ok((count, bytes))
}
