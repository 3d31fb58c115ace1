//! flock(2) on lock files: the kernel drops a lock when its holder dies, so a lock that
//! can be taken tells a dead holder from a live one without pid files or timeouts.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::SnapshotError;

/// A held lock; released on drop (or when the process dies).
pub(super) type Lock = Flock<File>;

/// Opens (creating) the lock file `path` and waits for the lock.
pub(super) fn lock(path: &Path, exclusive: bool) -> Result<Lock, SnapshotError> {
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let mut file = open(path)?;
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(SnapshotError::io(path)(errno.into())),
        }
    }
}

/// Takes the lock of the existing file `file` if nobody holds it; None when someone
/// does.
pub(super) fn try_lock(
    file: File,
    path: &Path,
    exclusive: bool,
) -> Result<Option<Lock>, SnapshotError> {
    let arg = if exclusive {
        FlockArg::LockExclusiveNonblock
    } else {
        FlockArg::LockSharedNonblock
    };
    match Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(SnapshotError::io(path)(errno.into())),
    }
}

/// Opens (creating) a lock file.
pub(super) fn open(path: &Path) -> Result<File, SnapshotError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(SnapshotError::io(path))
}
