//! Writing the entries of a layer tar: files, directories, links and devices with their
//! owners, modes, times and xattrs; OCI whiteouts as overlayfs whiteouts (0/0 character
//! devices) and opaque markers as the `trusted.overlay.opaque` xattr. Overlay xattrs in
//! the tar itself are dropped: only the unpacker writes those, so a layer cannot plant
//! redirects, metacopy or opaque markers of its own making.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::name::{classify, components, join, Name};
use super::root::{path_at, Root};
use super::LayerError;
use crate::digest::Digest;
use crate::xattr::set_xattr;

/// xattr namespaces that steer overlayfs (as root, and with `userxattr`).
const OVERLAY_XATTRS: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];
const PAX_XATTR: &[u8] = b"SCHILY.xattr.";
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
const COPY_BUFFER: usize = 256 << 10;

/// What a header (and its PAX records) says about an entry besides its name.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes entries below a [`Root`]; [`Writer::finish`] then sets the directories' modes
/// and times (last, as writing inside a directory changes its mtime).
#[derive(Debug)]
pub(super) struct Writer {
    root: Root,
    layer: Digest,
    dirs: Vec<(Vec<Vec<u8>>, Meta)>,
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(root: Root, layer: Digest) -> Self {
        Writer {
            root,
            layer,
            dirs: Vec::new(),
            buf: vec![0; COPY_BUFFER],
        }
    }

    /// Writes one entry.
    pub fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let layer = self.layer.clone();
        let at = At {
            layer: &layer,
            name: &raw,
        };
        let mut kind = entry.header().entry_type();
        // Old (V7) tars mark directories by a trailing slash only.
        if matches!(kind, EntryType::Regular | EntryType::Continuous) && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        // Global PAX headers hold archive-wide defaults, none of which we use.
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let meta = read_meta(entry, &at)?;
        let parts = components(&raw);
        let Some((last, dirs)) = parts.split_last() else {
            // The root itself (`./`): only a directory's metadata applies.
            if !kind.is_dir() {
                return Err(at.bad("names the layer's root but is not a directory"));
            }
            let root = self
                .root
                .dir(&[])
                .map_err(at.io("opening the layer's root"))?;
            own(&root, &meta, &at)?;
            self.dirs.push((Vec::new(), meta));
            return Ok(());
        };
        match classify(last) {
            Name::Meta => Ok(()),
            Name::BadWhiteout => Err(at.bad("a whiteout that names no file")),
            Name::Opaque => {
                let dir = self
                    .root
                    .make_dir(dirs)
                    .map_err(at.io("making the opaque directory"))?;
                set_fd_xattr(&dir, OPAQUE_XATTR, b"y").map_err(at.io("marking it opaque"))
            }
            Name::Whiteout(hidden) => {
                let dir = self
                    .root
                    .make_dir(dirs)
                    .map_err(at.io("making the whiteout's directory"))?;
                remove(&dir, hidden).map_err(at.io("removing what the whiteout replaces"))?;
                mknodat(
                    Some(dir.as_raw_fd()),
                    hidden,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|e| at.io("making the overlay whiteout")(e.into()))
            }
            Name::Plain(name) => {
                let dir = self
                    .root
                    .make_dir(dirs)
                    .map_err(at.io("making the parent directories"))?;
                self.plain(entry, kind, &dir, name, &parts, meta, &at)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn plain<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        dir: &OwnedFd,
        name: &[u8],
        parts: &[&[u8]],
        meta: Meta,
        at: &At<'_>,
    ) -> Result<(), LayerError> {
        let fd = Some(dir.as_raw_fd());
        match kind {
            EntryType::Directory => {
                if !is_dir(dir, name).map_err(at.io("looking at what is there"))? {
                    remove(dir, name).map_err(at.io("removing what was there"))?;
                    mkdirat(fd, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| at.io("making the directory")(e.into()))?;
                }
                let made = open_in(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(at.io("opening the directory"))?;
                own(&made, &meta, at)?;
                let parts = parts.iter().map(|p| p.to_vec()).collect();
                self.dirs.push((parts, meta));
                Ok(())
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove(dir, name).map_err(at.io("removing what was there"))?;
                let file = open_in(
                    dir,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                )
                .map_err(at.io("creating the file"))?;
                let mut file = File::from(file);
                copy(entry, &mut file, &mut self.buf, at)?;
                let file = OwnedFd::from(file);
                own(&file, &meta, at)?;
                futimens(file.as_raw_fd(), &meta.mtime, &meta.mtime)
                    .map_err(|e| at.io("setting its times")(e.into()))
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| at.bad("a symlink without a target"))?
                    .into_owned();
                remove(dir, name).map_err(at.io("removing what was there"))?;
                symlinkat(OsStr::from_bytes(&target), fd, name)
                    .map_err(|e| at.io("making the symlink")(e.into()))?;
                own_at(dir, name, &meta, false, at)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| at.bad("a hard link without a target"))?
                    .into_owned();
                let target_parts = components(&target);
                let Some((target_name, target_dirs)) = target_parts.split_last() else {
                    return Err(at.bad("a hard link to the layer's root"));
                };
                // Resolved inside the root like every name; never created.
                let target_dir = self
                    .root
                    .dir(target_dirs)
                    .map_err(at.io("finding the hard link's target"))?;
                remove(dir, name).map_err(at.io("removing what was there"))?;
                linkat(
                    Some(target_dir.as_raw_fd()),
                    *target_name,
                    fd,
                    name,
                    AtFlags::empty(),
                )
                .map_err(|e| at.io("making the hard link")(e.into()))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (kind, dev) = match kind {
                    EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    other => {
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let kind = if other == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (kind, makedev(u64::from(major), u64::from(minor)))
                    }
                };
                remove(dir, name).map_err(at.io("removing what was there"))?;
                mknodat(fd, name, kind, Mode::empty(), dev)
                    .map_err(|e| at.io("making the device node")(e.into()))?;
                own_at(dir, name, &meta, true, at)
            }
            other => Err(at.bad(format!("unsupported entry type {other:?}"))),
        }
    }

    /// Sets the directories' modes and times, deepest last as listed.
    pub fn finish(self) -> Result<(), LayerError> {
        for (parts, meta) in &self.dirs {
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let name = join(&refs);
            let at = At {
                layer: &self.layer,
                name: &name,
            };
            let dir = match self.root.dir(&refs) {
                Ok(dir) => dir,
                // A later entry replaced it with something else.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    continue
                }
                Err(e) => return Err(at.io("opening the directory")(e)),
            };
            fchmod(dir.as_raw_fd(), mode_of(meta.mode))
                .map_err(|e| at.io("setting its mode")(e.into()))?;
            futimens(dir.as_raw_fd(), &meta.mtime, &meta.mtime)
                .map_err(|e| at.io("setting its times")(e.into()))?;
        }
        Ok(())
    }
}

/// The entry being written, for errors.
struct At<'a> {
    layer: &'a Digest,
    name: &'a [u8],
}

impl At<'_> {
    fn entry(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(self.name))
    }

    fn io(&self, action: &'static str) -> impl FnOnce(io::Error) -> LayerError + '_ {
        move |source| LayerError::Entry {
            layer: self.layer.clone(),
            entry: self.entry(),
            action,
            source,
        }
    }

    fn bad(&self, reason: impl Into<String>) -> LayerError {
        LayerError::BadEntry {
            layer: self.layer.clone(),
            entry: self.entry(),
            reason: reason.into(),
        }
    }

    fn read(&self, source: io::Error) -> LayerError {
        LayerError::Read {
            layer: self.layer.clone(),
            source,
        }
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, at: &At<'_>) -> Result<Meta, LayerError> {
    let h = entry.header();
    let old = h.as_old();
    let number = |what: &str, raw: &[u8], v: io::Result<u64>| -> Result<u64, LayerError> {
        match v {
            Ok(v) => Ok(v),
            // An empty field is 0, as GNU tar and Go read it.
            Err(_) if raw.iter().all(|b| matches!(b, 0 | b' ')) => Ok(0),
            Err(e) => Err(at.bad(format!("bad {what} in the header: {e}"))),
        }
    };
    let id = |what: &str, raw: &[u8], v: io::Result<u64>| -> Result<u32, LayerError> {
        let v = number(what, raw, v)?;
        u32::try_from(v).map_err(|_| at.bad(format!("{what} {v} is out of range")))
    };
    let uid = id("uid", &old.uid, h.uid())?;
    let gid = id("gid", &old.gid, h.gid())?;
    let mode = id("mode", &old.mode, h.mode().map(u64::from))?;
    let secs = number("mtime", &old.mtime, h.mtime())?;
    let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let mut xattrs = Vec::new();
    if let Some(records) = entry.pax_extensions().map_err(|e| at.read(e))? {
        for record in records {
            let record = record.map_err(|e| at.read(e))?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(PAX_XATTR) {
                if !OVERLAY_XATTRS.iter().any(|p| name.starts_with(p)) {
                    xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
                }
            } else if key == b"mtime" {
                if let Some(t) = pax_time(record.value_bytes()) {
                    mtime = t;
                }
            }
        }
    }
    Ok(Meta {
        uid,
        gid,
        mode,
        mtime,
        xattrs,
    })
}

/// A PAX time, `SECONDS[.FRACTION]` (possibly negative).
fn pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut nanos: i64 = digits.parse().ok()?;
    if negative {
        secs = -secs;
        if nanos > 0 {
            secs -= 1;
            nanos = 1_000_000_000 - nanos;
        }
    }
    Some(TimeSpec::new(secs, nanos))
}

/// Owner, mode (`chmod`: not for symlinks), xattrs and times of something that cannot be
/// opened for writing (a symlink, a device, a FIFO) and that we just made.
fn own_at(
    dir: &OwnedFd,
    name: &[u8],
    meta: &Meta,
    chmod: bool,
    at: &At<'_>,
) -> Result<(), LayerError> {
    let fd = Some(dir.as_raw_fd());
    fchownat(
        fd,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| at.io("setting its owner")(e.into()))?;
    if chmod {
        // A node we just made, not a symlink: following is the same as not.
        fchmodat(fd, name, mode_of(meta.mode), FchmodatFlags::FollowSymlink)
            .map_err(|e| at.io("setting its mode")(e.into()))?;
    }
    let path = path_at(dir, name);
    for (key, value) in &meta.xattrs {
        set_xattr(&path, key, value).map_err(|source| LayerError::Xattr {
            layer: at.layer.clone(),
            source,
        })?;
    }
    utimensat(
        fd,
        name,
        &meta.mtime,
        &meta.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| at.io("setting its times")(e.into()))
}

fn mode_of(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o7777)
}

/// Owner, then mode (a chown clears set-id bits), then xattrs (a chown clears
/// `security.capability`) of an open file or directory.
fn own(fd: &OwnedFd, meta: &Meta, at: &At<'_>) -> Result<(), LayerError> {
    fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )
    .map_err(|e| at.io("setting its owner")(e.into()))?;
    fchmod(fd.as_raw_fd(), mode_of(meta.mode)).map_err(|e| at.io("setting its mode")(e.into()))?;
    for (key, value) in &meta.xattrs {
        set_fd_xattr(fd, key, value).map_err(|source| {
            at.io("setting an xattr")(io::Error::new(
                source.kind(),
                format!("{}: {source}", String::from_utf8_lossy(key)),
            ))
        })?;
    }
    Ok(())
}

fn set_fd_xattr(fd: &OwnedFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the name is NUL-terminated and outlives the call; value's pointer and
    // length describe one valid slice; the descriptor is open for the call.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens `name` in `dir`, never following a symlink there.
fn open_in(dir: &OwnedFd, name: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: `fd` was just returned open by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_dir(dir: &OwnedFd, name: &[u8]) -> io::Result<bool> {
    match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` from `dir` if it is there: a later entry replaces an earlier one.
fn remove(dir: &OwnedFd, name: &[u8]) -> io::Result<()> {
    if is_dir(dir, name)? {
        return std::fs::remove_dir_all(path_at(dir, name));
    }
    match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Copies the entry's data into `file`; read errors are the layer's, write errors the
/// file's.
fn copy(
    from: &mut impl Read,
    file: &mut File,
    buf: &mut [u8],
    at: &At<'_>,
) -> Result<(), LayerError> {
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(at.read(e)),
        };
        file.write_all(&buf[..n])
            .map_err(at.io("writing the file"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::pax_time;
    use nix::sys::time::TimeSpec;

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"12"), Some(TimeSpec::new(12, 0)));
        assert_eq!(pax_time(b"12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(
            pax_time(b"1.123456789123"),
            Some(TimeSpec::new(1, 123_456_789))
        );
        assert_eq!(pax_time(b"-1.25"), Some(TimeSpec::new(-2, 750_000_000)));
        assert_eq!(pax_time(b"x"), None);
        assert_eq!(pax_time(b"1.x"), None);
        assert_eq!(pax_time(b""), None);
    }
}
