//! Notification when a container's cgroup runs out of memory, for `skiff
//! events`. cgroup v1 signals an eventfd registered through
//! cgroup.event_control against memory.oom_control; cgroup v2 has no such
//! interface, so the "oom" counter in memory.events is watched with inotify.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcgroups::v1::ControllerType;

use crate::cgroupfs::{self, CgroupDir};

/// What a wake-up of the watch's descriptor meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The cgroup ran out of memory (at least once since the last wake-up).
    Oom,
    /// Nothing to report.
    Nothing,
    /// The cgroup was removed; the watch is over.
    Gone,
}

pub struct OomWatch {
    /// An eventfd (v1) or an inotify descriptor (v2); readable on news.
    file: File,
    source: Source,
}

enum Source {
    /// memory.oom_control must stay open while the eventfd is registered.
    V1 {
        _oom_control: File,
        event_control: PathBuf,
    },
    V2 {
        events: PathBuf,
        seen: u64,
    },
}

impl OomWatch {
    /// Starts watching the memory cgroup at `cgroup_path` (as in linux.cgroupsPath).
    pub fn new(cgroup_path: &Path) -> Result<Self> {
        match cgroupfs::controller_dir(cgroup_path, ControllerType::Memory)? {
            CgroupDir::V1(dir) => Self::v1(&dir),
            CgroupDir::V2(dir) => Self::v2(&dir),
        }
    }

    fn v1(dir: &Path) -> Result<Self> {
        let oom_control_path = dir.join("memory.oom_control");
        let oom_control = File::open(&oom_control_path)
            .with_context(|| format!("cannot open {}", oom_control_path.display()))?;
        // SAFETY: eventfd takes no pointers; it returns a new descriptor or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("eventfd");
        }
        // SAFETY: `raw` was just created by eventfd and nothing else owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        let event_control = dir.join("cgroup.event_control");
        let line = format!("{} {}", file.as_raw_fd(), oom_control.as_raw_fd());
        fs::write(&event_control, line)
            .with_context(|| format!("cannot register for OOM events in {}", dir.display()))?;
        Ok(Self {
            file,
            source: Source::V1 {
                _oom_control: oom_control,
                event_control,
            },
        })
    }

    fn v2(dir: &Path) -> Result<Self> {
        let events = dir.join("memory.events");
        // SAFETY: inotify_init1 takes no pointers; it returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: `raw` was just created by inotify_init1 and nothing else owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        let cpath = CString::new(events.as_os_str().as_bytes())
            .with_context(|| format!("bad path {}", events.display()))?;
        // SAFETY: `cpath` is NUL-terminated and outlives the call; the descriptor is open.
        let wd =
            unsafe { libc::inotify_add_watch(file.as_raw_fd(), cpath.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("cannot watch {}", events.display()));
        }
        let seen = oom_count(&events)?;
        Ok(Self {
            file,
            source: Source::V2 { events, seen },
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Consumes a wake-up; call when `fd()` is readable.
    pub fn read(&mut self) -> Result<Wake> {
        match &mut self.source {
            Source::V1 { event_control, .. } => {
                let mut count = [0u8; 8];
                self.file.read_exact(&mut count).context("read eventfd")?;
                // Removing the cgroup also signals the eventfd.
                if !event_control.exists() {
                    return Ok(Wake::Gone);
                }
                Ok(Wake::Oom)
            }
            Source::V2 { events, seen } => {
                drain(&mut self.file)?;
                let Ok(now) = oom_count(events) else {
                    return Ok(Wake::Gone);
                };
                if now > *seen {
                    *seen = now;
                    return Ok(Wake::Oom);
                }
                Ok(Wake::Nothing)
            }
        }
    }
}

/// Reads every pending inotify record (the descriptor is non-blocking).
fn drain(file: &mut File) -> Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("read inotify"),
        }
    }
}

/// The "oom" counter of a cgroup v2 memory.events file.
fn oom_count(events: &Path) -> Result<u64> {
    let text =
        fs::read_to_string(events).with_context(|| format!("cannot read {}", events.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == "oom")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0))
}
