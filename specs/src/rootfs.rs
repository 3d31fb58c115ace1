//! Reading a file inside an image's root filesystem as if chrooted there:
//! absolute symlinks and `..` resolve against the rootfs, never the host.
//! Each step opens the next component relative to the directory fd already
//! held, with O_NOFOLLOW, so swapping a directory for a symlink mid-walk
//! cannot lead outside either.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

/// Symlinks followed in one lookup, as the kernel allows.
const MAX_SYMLINKS: usize = 40;

fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
}

fn open_at(dir: &File, name: &str, flags: OFlag) -> io::Result<File> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Opens the regular file `path` (taken as absolute inside `root`) for
/// reading. Fails with `NotFound` when it does not exist and `InvalidInput`
/// when it is not a regular file.
pub fn open_in_root(root: &Path, path: &str) -> io::Result<File> {
    let root_dir = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(root)?;
    // Directories below the root on the way to the current position.
    let mut stack: Vec<File> = Vec::new();
    let mut pending: VecDeque<String> = components(path).collect();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let dir = stack.last().unwrap_or(&root_dir);
        let node = open_at(dir, &name, OFlag::O_PATH)?;
        let kind = SFlag::from_bits_truncate(fstat(node.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
            }
            let target = readlinkat(Some(dir.as_raw_fd()), name.as_str())?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                stack.clear();
            }
            for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                pending.push_front(c);
            }
        } else if kind == SFlag::S_IFDIR {
            stack.push(node);
        } else if !pending.is_empty() {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOTDIR));
        } else if kind != SFlag::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path} is not a regular file"),
            ));
        } else {
            // Non-blocking so a FIFO swapped in at the last moment cannot hang us.
            let file = open_at(dir, &name, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
            if !file.metadata()?.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{path} is not a regular file"),
                ));
            }
            return Ok(file);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{path} is a directory"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(root: &Path, path: &str) -> io::Result<String> {
        let mut s = String::new();
        open_in_root(root, path)?.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn stays_inside_the_root() -> anyhow::Result<()> {
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("secret"), "host")?;
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc"))?;
        std::fs::create_dir_all(root.join("usr/lib"))?;
        std::fs::write(root.join("usr/lib/passwd"), "inside")?;
        std::fs::write(root.join("secret"), "rootfs")?;
        // Absolute and relative links are resolved in the rootfs.
        symlink("/usr/lib/passwd", root.join("etc/passwd"))?;
        symlink("../usr/lib/passwd", root.join("etc/rel"))?;
        symlink(outside.path().join("secret"), root.join("etc/abs-out"))?;
        symlink("../../../../../../../secret", root.join("etc/dotdot-out"))?;
        symlink("loop", root.join("etc/loop"))?;

        assert_eq!(read(root, "/etc/passwd")?, "inside");
        assert_eq!(read(root, "etc/rel")?, "inside");
        assert_eq!(read(root, "/../../etc/passwd")?, "inside");
        assert_eq!(read(root, "/etc/dotdot-out")?, "rootfs");
        // The host path does not exist inside the rootfs.
        assert_eq!(
            read(root, "/etc/abs-out").err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        assert_eq!(
            read(root, "/etc/loop").err().and_then(|e| e.raw_os_error()),
            Some(nix::libc::ELOOP)
        );
        assert_eq!(
            read(root, "/etc").err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        assert_eq!(
            read(root, "/etc/nothing").err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        Ok(())
    }
}
