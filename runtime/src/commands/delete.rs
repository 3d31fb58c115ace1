//! `skiff delete`: remove a stopped container, or with --force any container,
//! and everything it holds: processes, cgroup, state directory. Poststop hook
//! failures are warnings, as the runtime spec asks.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use libcgroups::common::CgroupManager;
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use nix::sys::signal::Signal;

use crate::cli::GlobalOpts;
use crate::commands::kill;
use crate::container;
use crate::host_mounts;
use crate::lock::ContainerLock;
use crate::spec_fixups;

#[derive(Args, Debug)]
pub struct Delete {
    /// Kill the container first if it is still running, created or paused
    #[arg(short, long)]
    pub force: bool,

    /// Container id
    pub id: String,
}

impl Delete {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        let lock = ContainerLock::acquire(&g.root, &self.id)?;
        let dir = container::dir(&g.root, &self.id);
        if !dir.exists() {
            lock.remove();
            if self.force {
                return Ok(());
            }
            bail!("container {:?} does not exist", self.id);
        }
        let mut c = match container::load(&g.root, &self.id) {
            Ok(c) => c,
            Err(e) if self.force => {
                // An unreadable state.json must not make a container undeletable.
                tracing::warn!(target: "skiff", "{e:#}; removing what is left of it");
                remove_leftovers(&g.root, &self.id)?;
                lock.remove();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let status = c.status();
        // As runc: a created container (its process never started) is
        // killed and deleted without --force; containerd and CRI rely on it.
        let deletable = matches!(status, ContainerStatus::Stopped | ContainerStatus::Created);
        if !deletable && !self.force {
            bail!(
                "cannot delete container {} that is not stopped: {}",
                self.id,
                container::status_name(status)
            );
        }
        destroy(&mut c)?;
        lock.remove();
        Ok(())
    }
}

/// Kills what still runs, removes the cgroup, runs poststop hooks, removes the state dir.
pub fn destroy(c: &mut Container) -> Result<()> {
    let mut errors: Vec<String> = Vec::new();
    let config = YoukiConfig::load(&c.root).ok();
    if c.status() != ContainerStatus::Stopped {
        if let Some(cfg) = &config {
            if let Err(e) = kill::signal_all(c, &cfg.cgroup_path, Signal::SIGKILL) {
                errors.push(format!("killing processes: {e:#}"));
            }
        }
        if let Some(pid) = c.pid() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        wait_gone(c);
        c.set_status(ContainerStatus::Stopped);
    }
    if let Some(cfg) = &config {
        if let Err(e) = remove_cgroup(c, &cfg.cgroup_path) {
            errors.push(format!(
                "removing cgroup {}: {e:#}",
                cfg.cgroup_path.display()
            ));
        }
        let poststop = cfg.hooks.as_ref().and_then(|h| h.poststop().as_ref());
        // A stopped container has no pid in its OCI state (runc omits it).
        let mut state = c.state.clone();
        state.pid = None;
        container::run_hooks_warning("poststop", poststop, &state);
    }
    let notes = container::read_notes(&c.root);
    if let Some(before) = &notes.host_mounts_before {
        if let Err(e) = host_mounts::detach_new(&notes.rootfs, before) {
            errors.push(format!("{e:#}"));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&c.root) {
        if e.kind() != std::io::ErrorKind::NotFound {
            errors.push(format!("removing {}: {e}", c.root.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("delete {}: {}", c.id(), errors.join("; "))
    }
}

/// After SIGKILL the init process (and so its pid namespace) goes away within
/// moments; wait for it so the cgroup can be removed.
fn wait_gone(c: &Container) {
    let Some(pid) = c.pid() else { return };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match procfs_state(pid.as_raw()) {
            None | Some('Z') | Some('X') => return,
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn procfs_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

fn remove_cgroup(c: &Container, cgroup_path: &Path) -> Result<()> {
    let manager = kill::cgroup_manager(c, cgroup_path)?;
    // rmdir fails with EBUSY while the last killed processes are still exiting.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match manager.remove() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(target: "skiff", "cgroup not yet removable: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("cgroup manager"),
        }
    }
}

/// Removes a cgroup a failed create made when libcontainer's own cleanup
/// could not (its processes were still exiting) and the state dir with its
/// record of the cgroup is gone already.
pub fn remove_created_cgroup(id: &str, cgroup_path: &Path) -> Result<()> {
    let c = Container {
        state: libcontainer::container::State {
            id: id.to_owned(),
            ..Default::default()
        },
        ..Default::default()
    };
    let _ = kill::signal_all(&c, cgroup_path, Signal::SIGKILL);
    remove_cgroup(&c, cgroup_path)
}

/// Removes whatever a failed create left behind; the caller holds the lock.
pub fn remove_leftovers(root: &Path, id: &str) -> Result<()> {
    let _ = std::fs::remove_dir_all(spec_fixups::private_bundle_dir(root, id));
    let dir = container::dir(root, id);
    if !dir.exists() {
        return Ok(());
    }
    match Container::load(dir.clone()) {
        Ok(mut c) => {
            // Whatever state.json says, kill what may still run in the cgroup.
            c.set_status(ContainerStatus::Running);
            destroy(&mut c)
        }
        Err(_) => {
            // No usable state.json: a cgroup may exist under the spec's path.
            if let Ok(cfg) = YoukiConfig::load(&dir) {
                let c = Container {
                    root: dir.clone(),
                    ..Default::default()
                };
                let _ = kill::signal_all(&c, &cfg.cgroup_path, Signal::SIGKILL);
                let _ = remove_cgroup(&c, &cfg.cgroup_path);
            }
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
        }
    }
}
