//! OOM notices for a container's cgroup: the v1 memory controller's eventfd
//! (cgroup.event_control + memory.oom_control) or v2's memory.events
//! (watched with inotify, oom_kill counted). One small thread per container;
//! it ends when the cgroup is removed.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::thread;

use anyhow::{bail, Context, Result};

use crate::stats::{get, read_pairs, Cgroup};

const STACK: usize = 64 * 1024;

/// Calls `on_oom` on every OOM kill in `cgroup` until the cgroup is gone.
pub fn watch(cgroup: &Cgroup, on_oom: Box<dyn Fn() + Send>) -> Result<()> {
    match cgroup {
        Cgroup::V1(_) => {
            let Some(dir) = cgroup.dir("memory") else {
                return Ok(());
            };
            watch_v1(dir, on_oom)
        }
        Cgroup::V2(dir) => watch_v2(dir.clone(), on_oom),
        Cgroup::Unknown => Ok(()),
    }
}

fn watch_v1(dir: PathBuf, on_oom: Box<dyn Fn() + Send>) -> Result<()> {
    let control = dir.join("memory.oom_control");
    let oom = File::open(&control).with_context(|| format!("cannot open {}", control.display()))?;
    // SAFETY: eventfd has no memory arguments; a non-negative result is a new fd we own.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("eventfd");
    }
    // SAFETY: raw is a fresh, valid fd owned by nobody else.
    let efd = unsafe { OwnedFd::from_raw_fd(raw) };
    let line = format!("{} {}", efd.as_raw_fd(), oom.as_raw_fd());
    fs::write(dir.join("cgroup.event_control"), line)
        .with_context(|| format!("cannot register for OOM events in {}", dir.display()))?;
    let mut efd = File::from(efd);
    thread::Builder::new()
        .name("oom".into())
        .stack_size(STACK)
        .spawn(move || {
            let _keep = oom;
            let mut buf = [0u8; 8];
            while efd.read_exact(&mut buf).is_ok() {
                // The eventfd also fires when the cgroup is removed.
                if !control.exists() {
                    break;
                }
                on_oom();
            }
        })
        .context("cannot start the OOM watcher")?;
    Ok(())
}

fn watch_v2(dir: PathBuf, on_oom: Box<dyn Fn() + Send>) -> Result<()> {
    let events = dir.join("memory.events");
    if !events.exists() {
        bail!("{} is missing", events.display());
    }
    // SAFETY: inotify_init1 has no memory arguments; a non-negative result is ours.
    let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("inotify_init1");
    }
    // SAFETY: raw is a fresh, valid fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let cpath = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())?;
    // SAFETY: cpath is a valid NUL-terminated string for the duration of the call.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cpath.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot watch {}", events.display()));
    }
    let mut file = File::from(fd);
    thread::Builder::new()
        .name("oom".into())
        .stack_size(STACK)
        .spawn(move || {
            let mut seen = get(&read_pairs(&events), "oom_kill");
            let mut buf = [0u8; 512];
            while let Ok(n) = file.read(&mut buf) {
                // IN_IGNORED: the watch is gone with the cgroup.
                if n == 0 || !events.exists() {
                    break;
                }
                let now = get(&read_pairs(&events), "oom_kill");
                if now > seen {
                    seen = now;
                    on_oom();
                }
            }
        })
        .context("cannot start the OOM watcher")?;
    Ok(())
}
