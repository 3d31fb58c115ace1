//! The destination of an unpack, with every path resolved inside it: the kernel resolves
//! entry names and hardlink targets as if the directory were `/` (openat2's
//! RESOLVE_IN_ROOT), so a symlink `a -> /etc` makes `a/passwd` the layer's own
//! `etc/passwd` and nothing can reach outside, whatever the layer's symlinks say.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use super::name::{components, join};

/// Symlinks followed while making one directory, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// openat2 gives EAGAIN when a rename elsewhere on the filesystem raced the lookup.
const EAGAIN_RETRIES: usize = 128;

#[derive(Debug)]
pub(super) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the directory `path` (which the caller made or trusts).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Root { fd: owned(fd) })
    }

    /// The existing directory at `parts` (components below the root), open for reading
    /// (so its owner, mode, times and xattrs can be set through the descriptor).
    pub fn dir(&self, parts: &[&[u8]]) -> io::Result<OwnedFd> {
        if parts.is_empty() {
            return self.fd.try_clone();
        }
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_IN_ROOT
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let path = join(parts);
        for _ in 0..EAGAIN_RETRIES {
            match openat2(self.fd.as_raw_fd(), OsStr::from_bytes(&path), how) {
                Ok(fd) => return Ok(owned(fd)),
                Err(Errno::EAGAIN) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Errno::EAGAIN.into())
    }

    /// The directory at `parts`, made (root's, mode 0755, as tar does for parents a
    /// layer does not list) where missing. A symlink to nothing on the way gets its
    /// target made, inside the root like everything (`a -> /etc` then `a/x` makes the
    /// layer's `etc/`).
    pub fn make_dir(&self, parts: &[&[u8]]) -> io::Result<OwnedFd> {
        self.make_dir_following(parts.iter().map(|p| p.to_vec()).collect(), 0)
    }

    fn make_dir_following(&self, parts: Vec<Vec<u8>>, links: usize) -> io::Result<OwnedFd> {
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        match self.dir(&parts) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            other => return other,
        }
        let mut parent = self.fd.try_clone()?;
        for i in 0..parts.len() {
            parent = match self.dir(&parts[..=i]) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let fd = Some(parent.as_raw_fd());
                    match mkdirat(fd, parts[i], Mode::from_bits_truncate(0o755)) {
                        Ok(()) => self.dir(&parts[..=i])?,
                        // There, yet resolving it found nothing: a symlink to nowhere.
                        Err(Errno::EEXIST) => {
                            if links >= MAX_LINKS {
                                return Err(Errno::ELOOP.into());
                            }
                            let target = readlinkat(fd, parts[i])?;
                            let mut path = join(&parts[..i]);
                            if target.as_bytes().starts_with(b"/") {
                                path.clear();
                            }
                            path.push(b'/');
                            path.extend_from_slice(target.as_bytes());
                            path.push(b'/');
                            path.extend(join(&parts[i + 1..]));
                            let next = components(&path).into_iter().map(<[u8]>::to_vec);
                            return self.make_dir_following(next.collect(), links + 1);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e),
            };
        }
        Ok(parent)
    }
}

/// Takes ownership of a descriptor a nix call just returned.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned open by the kernel and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `name` inside the directory `dir` as a path, for calls that only take paths (xattrs of
/// symlinks, removing a tree). The directory is reached through its descriptor, so
/// nothing in the way is looked up again; `name` itself is a single component.
pub(super) fn path_at(dir: &OwnedFd, name: &[u8]) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(OsStr::from_bytes(name));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let root_dir = tmp.path().join("root");
        std::fs::create_dir(&root_dir)?;
        std::os::unix::fs::symlink("/", root_dir.join("up"))?;
        std::os::unix::fs::symlink("../../..", root_dir.join("dots"))?;
        std::os::unix::fs::symlink("/nowhere", root_dir.join("dangling"))?;
        let root = Root::open(&root_dir)?;
        for through in [&b"up"[..], b"dots"] {
            let fd = root.make_dir(&[through, b"made"])?;
            drop(fd);
        }
        assert!(root_dir.join("made").is_dir());
        assert!(!tmp.path().join("made").exists());
        // A symlink to nothing gets its target made, inside.
        drop(root.make_dir(&[b"dangling", b"x"])?);
        assert!(root_dir.join("nowhere/x").is_dir());
        assert!(!Path::new("/nowhere").exists());
        std::os::unix::fs::symlink("loop", root_dir.join("loop"))?;
        let err = root.make_dir(&[b"loop", b"x"]).err();
        assert_eq!(err.and_then(|e| e.raw_os_error()), Some(libc::ELOOP));
        let fd = root.dir(&[b"up", b"made"])?;
        assert!(path_at(&fd, b"").is_dir());
        Ok(())
    }
}
