//! Protection against CVE-2019-5736: a process in the container could open the
//! runtime's own binary through /proc/PID/exe while the runtime is inside the
//! container's namespaces, and overwrite it on the host. Before create, run and
//! exec, skiff re-executes itself from a sealed, anonymous in-memory copy, so
//! /proc/PID/exe points at a file nobody can write. state, list, kill and
//! delete never enter a container and skip this cost.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::sendfile::sendfile;

const SEALS: SealFlag = SealFlag::from_bits_truncate(
    SealFlag::F_SEAL_SEAL.bits()
        | SealFlag::F_SEAL_SHRINK.bits()
        | SealFlag::F_SEAL_GROW.bits()
        | SealFlag::F_SEAL_WRITE.bits(),
);

fn is_sealed_copy(exe: &File) -> bool {
    match fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(SEALS),
        Err(_) => false,
    }
}

/// Returns when the running binary is a sealed copy; otherwise replaces this
/// process with one (and so does not return on success).
pub fn ensure_sealed_copy() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("cannot open /proc/self/exe")?;
    if is_sealed_copy(&exe) {
        return Ok(());
    }
    let size = exe.metadata()?.len();
    let name = c"skiff";
    let memfd = memfd_create(
        name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context("memfd_create")?;
    let mut left = size as usize;
    while left > 0 {
        let n = sendfile(memfd.as_fd(), exe.as_fd(), None, left).context("copying the skiff binary")?;
        if n == 0 {
            anyhow::bail!("skiff binary shrank while it was being copied");
        }
        left -= n;
    }
    fcntl(memfd.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS)).context("sealing the binary copy")?;

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
        Some(memfd.as_raw_fd()),
        empty,
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .err();
    Err(anyhow::anyhow!(
        "cannot re-execute skiff from its sealed copy: {}",
        err.map(|e| e.desc()).unwrap_or("unknown error")
    ))
}
