//! Directories being filled (`ROOT/.tmp-*`): an unpack in progress, or a snapshot gc is
//! removing. Each holds a `lock` file its maker keeps locked for as long as it works on
//! it, so a temp whose lock can be taken belongs to a dead process and is removed; none is
//! ever trusted or renamed into place by anyone but its maker.
//!
//! A temp is made, and its lock appears, only while its maker holds the area lock
//! shared; the lock file is made under another name, locked, then renamed, so `lock`
//! exists only locked. A temp without `lock` (its maker died in between, or is in between
//! right now) is removed only by someone holding the area lock exclusively.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::lock::{self, Lock};
use super::SnapshotError;

pub(super) const TEMP_PREFIX: &str = ".tmp-";
const LOCK: &str = "lock";
const NEW_LOCK: &str = "lock.new";

/// A temp directory this process works in; removed on drop unless published.
#[derive(Debug)]
pub(super) struct Temp {
    path: PathBuf,
    lock: Option<Lock>,
}

impl Temp {
    /// Makes a new temp in `root`. The caller holds the area lock (shared at least).
    pub fn create(root: &Path) -> Result<Temp, SnapshotError> {
        let path = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(root)
            .map_err(SnapshotError::io(root))?
            .keep();
        // From here on, dropping `temp` removes the directory.
        let mut temp = Temp { path, lock: None };
        let new = temp.path.join(NEW_LOCK);
        let held = lock::lock(&new, true)?;
        let at = temp.path.join(LOCK);
        fs::rename(&new, &at).map_err(SnapshotError::io(&at))?;
        temp.lock = Some(held);
        Ok(temp)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temp to `dest` (whose parent exists). False when `dest` is there
    /// already: then someone else's copy stays and ours is removed.
    pub fn publish(mut self, dest: &Path) -> Result<bool, SnapshotError> {
        // The lock has done its job; a published snapshot carries none.
        let at = self.path.join(LOCK);
        fs::remove_file(&at).map_err(SnapshotError::io(&at))?;
        match fs::rename(&self.path, dest) {
            Ok(()) => {
                self.path = PathBuf::new();
                Ok(true)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => Ok(false),
            Err(e) => Err(SnapshotError::io(dest)(e)),
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        // Removed while still locked: nobody else touches it meanwhile. Should this fail,
        // the unlocked remains are swept later.
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
        self.lock.take();
    }
}

/// Removes the temps of `root` that nobody works on: those whose lock can be taken and,
/// when `exclusive` (the caller holds the area lock exclusively), those without a lock.
/// Returns how many went.
pub(super) fn sweep(root: &Path, exclusive: bool) -> Result<usize, SnapshotError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(SnapshotError::io(root)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(SnapshotError::io(root))?;
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            continue;
        }
        let path = entry.path();
        let at = path.join(LOCK);
        let held = match File::open(&at) {
            Ok(file) => match lock::try_lock(file, &at, true)? {
                Some(held) => Some(held),
                None => continue,
            },
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                if !exclusive {
                    continue;
                }
                None
            }
            Err(e) => return Err(SnapshotError::io(&at)(e)),
        };
        let gone = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match gone {
            Ok(()) => removed += 1,
            // Its maker finished with it after all (published it or removed it).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SnapshotError::io(&path)(e)),
        }
        drop(held);
    }
    Ok(removed)
}
