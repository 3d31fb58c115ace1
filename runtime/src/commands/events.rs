//! `skiff events`: a container's resource statistics and out-of-memory notices,
//! one JSON object per line as runc prints them:
//! `{"type":"stats","id":ID,"data":{...}}` and `{"type":"oom","id":ID}`.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::config::YoukiConfig;
use libcontainer::container::ContainerStatus;
use nix::unistd::Pid;

use crate::cli::GlobalOpts;
use crate::commands::kill;
use crate::container;
use crate::lock::ContainerLock;
use crate::oom_watch::{OomWatch, Wake};
use crate::stats::{self, Event};
use crate::units;

const EVENTS_HELP: &str = "\
Prints one JSON object per line, as runc does:
  {\"type\":\"stats\",\"id\":ID,\"data\":{\"cpu\":..,\"memory\":..,\"pids\":..,\"blkio\":..}}
every --interval, and {\"type\":\"oom\",\"id\":ID} whenever the container's cgroup runs
out of memory. Ends (exit 0) when the container's init process exits. With
--stats, prints one stats event and exits.";

/// Prints resource statistics and OOM events of a container
#[derive(Args, Debug)]
#[command(after_long_help = EVENTS_HELP)]
pub struct Events {
    /// Print one statistics event and exit
    #[arg(long)]
    pub stats: bool,

    /// Time between statistics events, in Go syntax (5s, 500ms, 1m30s)
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Duration,

    /// Container id
    pub id: String,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = units::parse_duration(text)?;
    if d.is_zero() {
        return Err("duration interval must be greater than 0".into());
    }
    Ok(d)
}

impl Events {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        // The lock is held only to look the container up: events runs for as
        // long as the container does and must not block kill or delete.
        let (c, cgroup_path, init) = {
            let _lock = ContainerLock::acquire(&g.root, &self.id)?;
            let c = container::load(&g.root, &self.id)?;
            if matches!(
                c.status(),
                ContainerStatus::Stopped | ContainerStatus::Creating
            ) {
                bail!("container with id {} is not running", self.id);
            }
            let cfg = YoukiConfig::load(&c.root).context("cannot read container config")?;
            let init = match (self.stats, c.pid()) {
                (true, _) => None,
                (false, Some(pid)) => Some(pidfd_open(pid)?),
                (false, None) => bail!("container {} has no init process", self.id),
            };
            (c, cfg.cgroup_path, init)
        };
        let manager = kill::cgroup_manager(&c, &cgroup_path)?;
        let mut out = io::stdout().lock();

        let Some(init) = init else {
            let s = stats::collect(&manager, &cgroup_path)?;
            return emit(&mut out, "stats", &self.id, Some(&s));
        };

        let mut oom = Some(OomWatch::new(&cgroup_path).context("cannot watch for OOM events")?);
        let mut next = Instant::now() + self.interval;
        loop {
            let timeout = next.saturating_duration_since(Instant::now());
            let mut fds = vec![init.as_fd()];
            if let Some(w) = &oom {
                fds.push(w.fd());
            }
            let ready = wait_readable(&fds, timeout)?;
            let exited = ready[0];
            // An OOM kill that ends the container is reported before we stop.
            if ready.get(1).copied().unwrap_or(false) {
                if let Some(w) = oom.as_mut() {
                    match w.read()? {
                        Wake::Oom => emit(&mut out, "oom", &self.id, None)?,
                        Wake::Nothing => {}
                        Wake::Gone => oom = None,
                    }
                }
            }
            if exited {
                return Ok(());
            }
            let now = Instant::now();
            if now >= next {
                match stats::collect(&manager, &cgroup_path) {
                    Ok(s) => emit(&mut out, "stats", &self.id, Some(&s))?,
                    Err(e) => tracing::error!(target: "skiff", "{e:#}"),
                }
                next += self.interval;
                if next <= now {
                    next = now + self.interval;
                }
            }
        }
    }
}

fn emit(out: &mut impl Write, kind: &str, id: &str, data: Option<&stats::Stats>) -> Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data })?;
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// A descriptor that becomes readable when the process exits (immune to pid reuse).
fn pidfd_open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers; it returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot watch the container's init process {pid}"));
    }
    let raw = RawFd::try_from(raw).context("pidfd_open returned a bad descriptor")?;
    // SAFETY: `raw` was just created by pidfd_open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Waits up to `timeout` for any of `fds` to become readable; says which are.
fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so a wake-up never comes just before the deadline.
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    // SAFETY: `pfds` is a valid array of `pfds.len()` entries, borrowed
    // exclusively for the call, and every descriptor in it is open.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err).context("poll");
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}
