//! OOM kills in a container's cgroup, counted by the kernel (`oom_kill` in
//! v1's memory.oom_control, v2's memory.events). A small thread per container
//! wakes on the v1 memory eventfd (cgroup.event_control) or on inotify of v2's
//! memory.events and reports new kills; the init's exit checks the count too,
//! so a kill is reported (before TaskExit) even if the thread runs late.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result};

use crate::stats::{get, read_pairs, Cgroup};

const STACK: usize = 64 * 1024;

pub struct Oom {
    cgroup: Cgroup,
    /// The file with the `oom_kill` count.
    counter: PathBuf,
    seen: Mutex<u64>,
    on_oom: Box<dyn Fn() + Send + Sync>,
    /// Set before the cgroup goes away for a restart: a new cgroup at the
    /// same path must not keep the old watcher alive.
    stopped: AtomicBool,
}

impl Oom {
    /// None when the shim cannot find the container's memory cgroup.
    pub fn new(cgroup: &Cgroup, on_oom: Box<dyn Fn() + Send + Sync>) -> Option<Arc<Self>> {
        let counter = match cgroup {
            Cgroup::V1(_) => cgroup.dir("memory")?.join("memory.oom_control"),
            Cgroup::V2(dir) => dir.join("memory.events"),
            Cgroup::Unknown => return None,
        };
        let seen = Mutex::new(get(&read_pairs(&counter), "oom_kill"));
        Some(Arc::new(Self {
            cgroup: cgroup.clone(),
            counter,
            seen,
            on_oom,
            stopped: AtomicBool::new(false),
        }))
    }

    /// Ends the watcher at its next wake-up (the cgroup's removal is one).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Reports once if the kill count grew since the last check.
    pub fn check(&self) {
        let now = get(&read_pairs(&self.counter), "oom_kill");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if now > *seen {
            *seen = now;
            (self.on_oom)();
        }
    }

    /// Starts the watcher thread; it ends when the cgroup is removed.
    pub fn watch(self: &Arc<Self>) -> Result<()> {
        let fd = match &self.cgroup {
            Cgroup::V1(_) => self.v1_eventfd()?,
            _ => self.v2_inotify()?,
        };
        let mut file = File::from(fd);
        let me = self.clone();
        thread::Builder::new()
            .name("oom".into())
            .stack_size(STACK)
            .spawn(move || {
                let mut buf = [0u8; 512];
                // Both fire once more when the cgroup goes away.
                while matches!(file.read(&mut buf), Ok(n) if n > 0) {
                    if me.stopped.load(Ordering::SeqCst) || !me.counter.exists() {
                        break;
                    }
                    me.check();
                }
            })
            .context("cannot start the OOM watcher")?;
        Ok(())
    }

    fn v1_eventfd(&self) -> Result<OwnedFd> {
        let control = File::open(&self.counter)
            .with_context(|| format!("cannot open {}", self.counter.display()))?;
        // SAFETY: eventfd has no memory arguments; a non-negative result is a new fd we own.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("eventfd");
        }
        // SAFETY: raw is a fresh, valid fd owned by nobody else.
        let efd = unsafe { OwnedFd::from_raw_fd(raw) };
        let dir = self
            .counter
            .parent()
            .context("memory.oom_control has no directory")?;
        // The kernel keeps its own reference to memory.oom_control.
        fs::write(
            dir.join("cgroup.event_control"),
            format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
        )
        .with_context(|| format!("cannot register for OOM events in {}", dir.display()))?;
        Ok(efd)
    }

    fn v2_inotify(&self) -> Result<OwnedFd> {
        // SAFETY: inotify_init1 has no memory arguments; a non-negative result is ours.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: raw is a fresh, valid fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = std::ffi::CString::new(self.counter.as_os_str().as_encoded_bytes())?;
        // SAFETY: path is a valid NUL-terminated string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot watch {}", self.counter.display()));
        }
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// The v2 path (this host is v1): inotify on a memory.events file, written here the way
    /// the kernel updates it.
    #[test]
    fn v2_memory_events_report_each_new_kill_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let events = dir.path().join("memory.events");
        fs::write(&events, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")?;
        let kills = Arc::new(AtomicUsize::new(0));
        let counted = kills.clone();
        let oom = Oom::new(
            &Cgroup::V2(dir.path().to_path_buf()),
            Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .context("no watcher for a v2 cgroup")?;
        oom.watch()?;
        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while kills.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            kills.load(Ordering::SeqCst)
        };
        // Other counters moving is not a kill.
        fs::write(&events, "low 0\nhigh 3\nmax 1\noom 0\noom_kill 0\n")?;
        fs::write(&events, "low 0\nhigh 3\nmax 2\noom 1\noom_kill 1\n")?;
        assert_eq!(wait_for(1), 1);
        fs::write(&events, "low 0\nhigh 3\nmax 4\noom 2\noom_kill 2\n")?;
        assert_eq!(wait_for(2), 2);
        // The init's exit checks again: nothing new, nothing reported.
        oom.check();
        assert_eq!(kills.load(Ordering::SeqCst), 2);
        Ok(())
    }
}
