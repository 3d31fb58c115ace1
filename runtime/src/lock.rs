//! Per-container lock: every command that reads or changes a container holds an
//! exclusive flock on `<root>/:locks/<id>`, so concurrent commands on one
//! container are serialised. ':' cannot appear in a container id, so the lock
//! directory never collides with a container's state directory.
//!
//! A lock file lives as long as its container: one taken for an id that has no
//! state directory when the command ends (an unknown id, a failed create) is
//! removed again, so such commands leave nothing behind.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

pub const LOCK_DIR: &str = ":locks";

/// Held for the life of a command; dropping it releases the lock.
pub struct ContainerLock {
    file: Flock<File>,
    path: PathBuf,
    state_dir: PathBuf,
}

impl ContainerLock {
    pub fn acquire(root: &Path, id: &str) -> Result<Self> {
        let dir = root.join(LOCK_DIR);
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create lock directory {}", dir.display()))?;
        let path = dir.join(id);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .with_context(|| format!("cannot open lock file {}", path.display()))?;
            let locked = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| e)
                .with_context(|| format!("cannot lock {}", path.display()))?;
            // A `delete` may have unlinked the file while we waited; then our lock
            // guards nothing and we must lock the file that is there now.
            let held = locked.metadata()?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Self {
                        file: locked,
                        path,
                        state_dir: crate::container::dir(root, id),
                    })
                }
                _ => continue,
            }
        }
    }

    /// Removes the lock file while still holding it (after a container is deleted).
    /// Only our own file: once unlinked, the path may name a newer lock that
    /// another command holds.
    pub fn remove(&self) {
        let ours = match (self.file.metadata(), fs::metadata(&self.path)) {
            (Ok(held), Ok(now)) => held.ino() == now.ino() && held.dev() == now.dev(),
            _ => false,
        };
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for ContainerLock {
    fn drop(&mut self) {
        if !self.state_dir.exists() {
            self.remove();
        }
    }
}
