//! A container's root filesystem: an overlay of the image's layer snapshots
//! with the container's own upper dir, mounted at the bundle's `rootfs`
//! while the container is started, and paths resolved inside it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{umount2, MntFlags};

/// Whether `path` is a mount point (its device differs from its parent's,
/// or mountinfo lists it).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| p == want)
}

/// Unmounts the rootfs (detached, so a process still holding a file there
/// cannot make it fail); nothing mounted is not an error.
pub fn unmount(rootfs: &Path) -> Result<()> {
    while is_mounted(rootfs) {
        match umount2(rootfs, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => break,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot unmount {}", rootfs.display()))
            }
        }
    }
    Ok(())
}

/// Resolves directory `path` as if `root` were `/` (symlinks and `..`
/// never leave it) and returns its real host path; None when there is no
/// such directory.
pub fn dir_in_root(root: &Path, path: &str) -> Result<Option<PathBuf>> {
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", root.display()))?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    let root_fd = unsafe { OwnedFd::from_raw_fd(root_fd) };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(root_fd.as_raw_fd(), path, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot resolve {path} in the rootfs")),
    };
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    Ok(Some(real))
}
