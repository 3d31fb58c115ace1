//! Serialising skiffctl processes: an exclusive flock per container (every
//! command that changes one takes it) and one for the engine as a whole
//! (names and published ports are allocated under it). A lock dies with its
//! process, so a killed skiffctl never leaves one held.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the lock `dir/name` is ours.
    pub fn acquire(dir: &Path, name: &str) -> Result<Lock> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock {}", path.display()))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(Lock { _file: file })
    }
}

/// The engine-wide lock.
pub fn engine(locks: &Path) -> Result<Lock> {
    Lock::acquire(locks, "engine")
}

/// The lock of one container.
pub fn container(locks: &Path, id: &str) -> Result<Lock> {
    Lock::acquire(locks, id)
}

/// Removes a container's lock file (after rm); holders keep their lock.
pub fn remove(locks: &Path, id: &str) {
    let _ = fs::remove_file(locks.join(id));
}
