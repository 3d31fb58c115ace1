//! Copying files into and out of a container's root (`cp`) without ever
//! leaving it: paths inside the container are resolved with openat2's
//! RESOLVE_IN_ROOT, and every entry below is opened relative to its
//! parent's descriptor with O_NOFOLLOW, so a symlink in the container (even
//! one swapped in meanwhile) cannot point a read or a write at the host.
//! Symlinks are copied as links, never followed.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

fn own(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The container's root as a directory descriptor.
pub fn open_root(root: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", root.display()))?;
    Ok(own(fd))
}

/// Opens `path` inside `root`; the last component is not followed when it
/// is a symlink. None when it does not exist.
fn resolve(root: &OwnedFd, path: &Path, flags: OFlag) -> Result<Option<OwnedFd>> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.as_raw_fd(), path, how) {
        Ok(fd) => Ok(Some(own(fd))),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("cannot open {} in the container", path.display()))
        }
    }
}

fn kind(st: &nix::sys::stat::FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// The name `src` has (`.` at the end means "its contents").
fn base_name(p: &Path) -> Option<OsString> {
    p.file_name().map(OsStr::to_owned)
}

fn wants_contents(p: &str) -> bool {
    p.ends_with("/.") || p == "."
}

/// `cp CONTAINER:SRC DEST`: `root` is the container's root.
pub fn copy_out(root: &Path, src: &str, dest: &Path) -> Result<()> {
    let root_fd = open_root(root)?;
    let src_path = Path::new(src);
    let Some(fd) = resolve(&root_fd, src_path, OFlag::O_PATH)? else {
        bail!("Could not find the file {src} in container");
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    let is_dir = kind(&st) == SFlag::S_IFDIR;
    let target = if dest.is_dir() {
        if is_dir && wants_contents(src) {
            dest.to_path_buf()
        } else {
            dest.join(base_name(src_path).unwrap_or_else(|| OsString::from("root")))
        }
    } else {
        if dest.as_os_str().as_bytes().ends_with(b"/") {
            bail!("destination directory {} does not exist", dest.display());
        }
        dest.to_path_buf()
    };
    if is_dir {
        let dir = resolve(&root_fd, src_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?
            .context("the directory went away")?;
        fs::create_dir_all(&target)?;
        out_dir(&dir, &target)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(st.st_mode & 0o7777))?;
        Ok(())
    } else {
        let parent = resolve(
            &root_fd,
            src_path.parent().unwrap_or(Path::new("/")),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )?
        .context("the parent directory went away")?;
        let name = base_name(src_path).context("no file name")?;
        out_entry(&parent, &name, &target)
    }
}

fn out_dir(dir: &OwnedFd, to: &Path) -> Result<()> {
    let listing = format!("/proc/self/fd/{}", dir.as_raw_fd());
    for e in fs::read_dir(&listing)? {
        let name = e?.file_name();
        out_entry(dir, &name, &to.join(&name))?;
    }
    Ok(())
}

fn out_entry(dir: &OwnedFd, name: &OsStr, to: &Path) -> Result<()> {
    let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let mode = st.st_mode & 0o7777;
    match kind(&st) {
        SFlag::S_IFDIR => {
            let sub = own(openat(
                Some(dir.as_raw_fd()),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
            fs::create_dir_all(to)?;
            out_dir(&sub, to)?;
            fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
        }
        SFlag::S_IFREG => {
            let from = own(openat(
                Some(dir.as_raw_fd()),
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
            let mut from = File::from(from);
            if fs::symlink_metadata(to).is_ok_and(|m| !m.is_file()) {
                fs::remove_file(to)?;
            }
            let mut out = File::create(to)?;
            io::copy(&mut from, &mut out)?;
            out.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(Some(dir.as_raw_fd()), name)?;
            let _ = fs::remove_file(to);
            std::os::unix::fs::symlink(target, to)?;
        }
        // Devices, fifos and sockets are not copied out.
        _ => return Ok(()),
    }
    let _ = std::os::unix::fs::lchown(to, Some(st.st_uid), Some(st.st_gid));
    Ok(())
}

/// `cp SRC CONTAINER:DEST`: `root` is the container's root.
pub fn copy_in(src: &Path, root: &Path, dest: &str) -> Result<()> {
    let root_fd = open_root(root)?;
    let md = fs::symlink_metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
    let dest_path = Path::new(dest);
    let existing = resolve(&root_fd, dest_path, OFlag::O_PATH)?;
    let dest_is_dir = existing
        .as_ref()
        .map(|fd| nix::sys::stat::fstat(fd.as_raw_fd()).map(|st| kind(&st) == SFlag::S_IFDIR))
        .transpose()?
        .unwrap_or(false);
    let src_str = src.to_string_lossy();
    // Where the copy goes: a directory to write into and the entry's name.
    let (parent_path, name): (PathBuf, Option<OsString>) = if dest_is_dir {
        if md.is_dir() && wants_contents(&src_str) {
            (dest_path.to_path_buf(), None)
        } else {
            (dest_path.to_path_buf(), base_name(src))
        }
    } else {
        if dest.ends_with('/') {
            bail!("destination directory {dest} does not exist in the container");
        }
        (
            dest_path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            base_name(dest_path),
        )
    };
    let Some(parent) = resolve(&root_fd, &parent_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?
    else {
        bail!(
            "destination directory {} does not exist in the container",
            parent_path.display()
        );
    };
    match name {
        None => in_dir_contents(src, &parent),
        Some(n) => in_entry(src, &parent, &n),
    }
}

fn in_dir_contents(src: &Path, dir: &OwnedFd) -> Result<()> {
    for e in fs::read_dir(src)? {
        let e = e?;
        in_entry(&e.path(), dir, &e.file_name())?;
    }
    Ok(())
}

fn in_entry(src: &Path, dir: &OwnedFd, name: &OsStr) -> Result<()> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    let existing = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing
        .as_ref()
        .is_some_and(|st| kind(st) == SFlag::S_IFDIR);
    if existing.is_some() && !(ft.is_dir() && existing_dir) {
        // Replace what is there; a directory in the way of a file is an error.
        let flag = if existing_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        unlinkat(Some(dir.as_raw_fd()), name, flag)
            .with_context(|| format!("cannot replace {}", Path::new(name).display()))?;
    }
    let mode = Mode::from_bits_truncate(md.mode() & 0o7777);
    if ft.is_dir() {
        if !existing_dir {
            mkdirat(Some(dir.as_raw_fd()), name, Mode::S_IRWXU)?;
        }
        let sub = own(openat(
            Some(dir.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
        in_dir_contents(src, &sub)?;
        fchmod(sub.as_raw_fd(), mode)?;
    } else if ft.is_file() {
        let to = own(openat(
            Some(dir.as_raw_fd()),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )?);
        let mut to = File::from(to);
        io::copy(&mut File::open(src)?, &mut to)?;
        fchmod(to.as_fd().as_raw_fd(), mode)?;
    } else if ft.is_symlink() {
        symlinkat(fs::read_link(src)?.as_os_str(), Some(dir.as_raw_fd()), name)?;
    } else {
        return Ok(());
    }
    // docker cp leaves files owned by root in the container.
    let _ = fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(0)),
        Some(Gid::from_raw(0)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    Ok(())
}
