//! Protection against CVE-2019-5736: a process in the container could open the
//! runtime's own binary through /proc/PID/exe while the runtime is inside the
//! container's namespaces, and overwrite it on the host.
//!
//! Before create, run and exec, skiff makes sure /proc/self/exe is a file that
//! cannot be written: if it already lives on a read-only mount nothing is done;
//! otherwise skiff re-executes itself through a detached, read-only bind mount
//! of its binary (open_tree + mount_setattr: no copy, no mount visible to
//! anyone, so a container cannot remount it), or, where the kernel lacks that
//! API, from a sealed in-memory copy. state, list, kill and delete never enter
//! a container and skip this.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::sendfile::sendfile;
use nix::sys::statvfs::{fstatvfs, FsFlags};

const SEALS: SealFlag = SealFlag::from_bits_truncate(
    SealFlag::F_SEAL_SEAL.bits()
        | SealFlag::F_SEAL_SHRINK.bits()
        | SealFlag::F_SEAL_GROW.bits()
        | SealFlag::F_SEAL_WRITE.bits(),
);

/// Subcommands that put a skiff process inside a container.
const GUARDED: &[&str] = &["create", "run", "exec"];

/// True when the command line names a subcommand that enters a container.
/// Runs before argument parsing so the re-exec happens as early as possible;
/// guarding a command that did not need it only costs time.
pub fn needed_for(args: &[std::ffi::OsString]) -> bool {
    let mut skip_value = false;
    for a in args.iter().skip(1) {
        let Some(a) = a.to_str() else { continue };
        if skip_value {
            skip_value = false;
            continue;
        }
        if matches!(a, "--root" | "--log" | "--log-format" | "--criu") {
            skip_value = true;
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        if GUARDED.contains(&a) {
            return true;
        }
        // The first positional word is the subcommand; --rootless may take a
        // separate value, so keep looking while the word is not a subcommand.
        if !matches!(a, "true" | "false" | "auto") {
            return false;
        }
    }
    false
}

/// Whether the running binary can no longer be written through /proc/self/exe.
fn exe_is_protected() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    if fstatvfs(&exe).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY)) {
        return true;
    }
    fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|bits| SealFlag::from_bits_truncate(bits).contains(SEALS))
}

/// Returns when the running binary is protected; otherwise replaces this
/// process with a protected one (and so does not return on success).
pub fn ensure_protected() -> Result<()> {
    if exe_is_protected() {
        return Ok(());
    }
    let fd = match readonly_detached_exe() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(target: "skiff", "read-only bind of the binary unavailable ({e}); copying it");
            sealed_copy()?
        }
    };
    reexec(fd)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// A detached read-only bind mount of our binary, as an O_PATH fd.
fn readonly_detached_exe() -> std::io::Result<OwnedFd> {
    let path = c"/proc/self/exe";
    // SAFETY: open_tree takes a NUL-terminated path and flags; it returns a new fd or -1.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: `attr` is a valid mount_attr of the size passed; fd is a mount fd from open_tree.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// A sealed anonymous copy of our binary (the fallback: costs a full copy).
fn sealed_copy() -> Result<OwnedFd> {
    let exe = File::open("/proc/self/exe").context("cannot open /proc/self/exe")?;
    let size = exe.metadata()?.len();
    let memfd = memfd_create(
        c"skiff",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context("memfd_create")?;
    let mut left = usize::try_from(size).context("binary size")?;
    while left > 0 {
        let n =
            sendfile(memfd.as_fd(), exe.as_fd(), None, left).context("copying the skiff binary")?;
        if n == 0 {
            anyhow::bail!("skiff binary shrank while it was being copied");
        }
        left -= n;
    }
    fcntl(memfd.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS)).context("sealing the binary copy")?;
    Ok(memfd)
}

fn reexec(fd: OwnedFd) -> Result<()> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()))
        .collect::<Result<_, _>>()
        .context("argument holds a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("environment holds a NUL byte")?;
    let empty: &CStr = c"";
    let err = nix::unistd::execveat(
        Some(fd.as_raw_fd()),
        empty,
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .err();
    Err(anyhow::anyhow!(
        "cannot re-execute skiff from a protected binary: {}",
        err.map(|e| e.desc()).unwrap_or("unknown error")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(Into::into).collect()
    }

    #[test]
    fn guarded_subcommands() {
        assert!(needed_for(&args(&[
            "skiff", "create", "--bundle", "b", "x"
        ])));
        assert!(needed_for(&args(&["skiff", "--root", "/r", "run", "x"])));
        assert!(needed_for(&args(&["skiff", "--log", "run", "exec", "x"])));
        assert!(needed_for(&args(&[
            "skiff",
            "--rootless",
            "true",
            "exec",
            "x"
        ])));
        assert!(!needed_for(&args(&["skiff", "state", "run"])));
        assert!(!needed_for(&args(&["skiff", "--root", "run", "kill", "x"])));
        assert!(!needed_for(&args(&["skiff", "list"])));
    }
}
