//! runc's `tmpcopyup` mount option, which podman puts on every --tmpfs mount
//! and on the /tmp, /var/tmp and /run tmpfs of --read-only: the new tmpfs
//! starts out holding what the image has at its destination. libcontainer 0.7
//! would hand the word to mount(2), which fails with EINVAL, so it is taken
//! out of the spec and skiff copies the files itself, from the host side, once
//! create has mounted the tmpfs and before the user process can run.
//!
//! Both trees are walked through directory fds, never by host path: the source
//! is resolved inside the rootfs and the target inside the container's root
//! (/proc/PID/root), so an image's symlink cannot point either side at the host.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::Spec;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, mknodat, FileStat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, TMPFS_MAGIC};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Pid, Uid};

const COPY_UP: &str = "tmpcopyup";
/// crun's opt-out; runc does not know it either, and no copy is the default here.
const NO_COPY_UP: &str = "notmpcopyup";

/// Takes tmpcopyup (and notmpcopyup) out of the spec's tmpfs mounts; returns
/// the destinations that asked for a copy.
pub fn take_from(spec: &mut Spec) -> Vec<PathBuf> {
    let mut dests = Vec::new();
    for m in spec.mounts_mut().iter_mut().flatten() {
        if m.typ().as_deref() != Some("tmpfs") {
            continue;
        }
        let dest = m.destination().clone();
        let Some(opts) = m.options_mut() else {
            continue;
        };
        if opts.iter().any(|o| o == COPY_UP) {
            dests.push(dest);
        }
        opts.retain(|o| o != COPY_UP && o != NO_COPY_UP);
    }
    dests
}

/// The image's directories at the copy-up destinations, opened before create
/// mounts anything: an open directory keeps showing what the image has there
/// even where the tmpfs then covers it (a container without a mount
/// namespace of its own mounts over the rootfs itself). None where the image
/// has no such directory.
pub struct Sources(Vec<(PathBuf, Option<OwnedFd>)>);

pub fn open_sources(rootfs: &Path, dests: &[PathBuf]) -> Result<Sources> {
    if dests.is_empty() {
        return Ok(Sources(Vec::new()));
    }
    let image_root = open_dir_path(rootfs)?;
    let mut out = Vec::with_capacity(dests.len());
    for dest in dests {
        let src = open_in_root(&image_root, dest)
            .with_context(|| format!("tmpcopyup {}: opening it in the image", dest.display()))?;
        out.push((dest.clone(), src));
    }
    Ok(Sources(out))
}

/// Copies each opened image directory into the tmpfs at its destination in
/// the container whose init is `pid`.
pub fn fill(pid: Pid, sources: &Sources) -> Result<()> {
    if sources.0.is_empty() {
        return Ok(());
    }
    let container = format!("/proc/{pid}/root");
    let container_root = open_dir_path(Path::new(&container))?;
    for (dest, src) in &sources.0 {
        let Some(src) = src else {
            continue;
        };
        let dst = open_in_root(&container_root, dest)
            .with_context(|| format!("tmpcopyup {}: opening the tmpfs", dest.display()))?
            .with_context(|| format!("tmpcopyup {}: the tmpfs is not mounted", dest.display()))?;
        let (src_st, dst_st) = (fstat(src.as_raw_fd())?, fstat(dst.as_raw_fd())?);
        let on_tmpfs = fstatfs(&dst).is_ok_and(|s| s.filesystem_type() == TMPFS_MAGIC);
        if !on_tmpfs || (src_st.st_dev, src_st.st_ino) == (dst_st.st_dev, dst_st.st_ino) {
            bail!(
                "tmpcopyup {}: no fresh tmpfs is mounted there",
                dest.display()
            );
        }
        copy_tree(src, &dst, dst_st.st_dev)
            .with_context(|| format!("tmpcopyup {}", dest.display()))?;
    }
    Ok(())
}

fn own(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_dir_path(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(own(fd))
}

/// Opens directory `path` as if `root` were `/`; None when it does not exist
/// or is not a directory.
fn open_in_root(root: &OwnedFd, path: &Path) -> Result<Option<OwnedFd>> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.as_raw_fd(), path, how) {
        Ok(fd) => Ok(Some(own(fd))),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Copies the entries of directory `src` into directory `dst` on the tmpfs
/// `dev`, keeping types, modes and owners; symlinks are copied, never followed.
/// libcontainer has already made the mount points of the mounts nested in the
/// tmpfs (/etc/hosts in an /etc tmpfs): those entries are kept as they are.
fn copy_tree(src: &OwnedFd, dst: &OwnedFd, dev: u64) -> Result<()> {
    let listing = format!("/proc/self/fd/{}", src.as_raw_fd());
    for entry in std::fs::read_dir(&listing).with_context(|| format!("cannot list {listing}"))? {
        let name = entry?.file_name();
        let name = Path::new(&name);
        let st = fstatat(Some(src.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        copy_entry(src, dst, dev, name, &st)
            .with_context(|| format!("copying {}", name.display()))?;
    }
    Ok(())
}

fn copy_entry(src: &OwnedFd, dst: &OwnedFd, dev: u64, name: &Path, st: &FileStat) -> Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mode = Mode::from_bits_truncate(st.st_mode);
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let existing = match fstatat(Some(dst.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(e) => Some(e),
        Err(nix::errno::Errno::ENOENT) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(e) = existing {
        let is_dir = SFlag::from_bits_truncate(e.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        // Only a directory of the tmpfs itself is merged into; anything else
        // there is a mount point (or a mount) that stays.
        if !(is_dir && kind == SFlag::S_IFDIR && e.st_dev == dev) {
            return Ok(());
        }
    }
    if kind == SFlag::S_IFDIR {
        if existing.is_none() {
            mkdirat(Some(dst.as_raw_fd()), name, Mode::S_IRWXU)?;
        }
        let from = own(openat(
            Some(src.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
            Mode::empty(),
        )?);
        let to = own(openat(
            Some(dst.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
            Mode::empty(),
        )?);
        copy_tree(&from, &to, dev)?;
        // Owner first: chown clears set-id bits that chmod then restores.
        fchown(to.as_raw_fd(), uid, gid)?;
        fchmod(to.as_raw_fd(), mode)?;
    } else if kind == SFlag::S_IFREG {
        let from = own(openat(
            Some(src.as_raw_fd()),
            name,
            OFlag::O_RDONLY | nofollow,
            Mode::empty(),
        )?);
        let to = own(openat(
            Some(dst.as_raw_fd()),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )?);
        let (mut from, mut to) = (File::from(from), File::from(to));
        io::copy(&mut from, &mut to)?;
        fchown(to.as_raw_fd(), uid, gid)?;
        fchmod(to.as_raw_fd(), mode)?;
    } else if kind == SFlag::S_IFLNK {
        let target = readlinkat(Some(src.as_raw_fd()), name)?;
        symlinkat(target.as_os_str(), Some(dst.as_raw_fd()), name)?;
        fchownat(
            Some(dst.as_raw_fd()),
            name,
            uid,
            gid,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    } else {
        // Device nodes, fifos and sockets: recreated, not opened.
        mknodat(
            Some(dst.as_raw_fd()),
            name,
            kind,
            Mode::S_IRUSR | Mode::S_IWUSR,
            st.st_rdev,
        )?;
        fchownat(
            Some(dst.as_raw_fd()),
            name,
            uid,
            gid,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        nix::sys::stat::fchmodat(
            Some(dst.as_raw_fd()),
            name,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_option_only_from_tmpfs_mounts() -> Result<()> {
        let mut spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "mounts": [
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["rw", "tmpcopyup", "nosuid"]},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                 "options": ["notmpcopyup"]},
                {"destination": "/data", "type": "bind", "source": "/x",
                 "options": ["rbind", "tmpcopyup"]}
            ]
        }))?;
        assert_eq!(take_from(&mut spec), vec![PathBuf::from("/tmp")]);
        let opts: Vec<Vec<String>> = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| m.options().clone().unwrap_or_default())
            .collect();
        assert_eq!(
            opts,
            vec![vec!["rw", "nosuid"], vec![], vec!["rbind", "tmpcopyup"]]
        );
        Ok(())
    }
}
