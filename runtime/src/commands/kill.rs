//! `skiff kill`: send a signal to the container's init, or with --all to every
//! process in its cgroup. Unlike libcontainer's kill, a signal that does not
//! end the process (SIGCONT, SIGUSR1, SIGWINCH) does not mark it stopped: the
//! status is always read from the process itself.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, FreezerState,
};
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};

use crate::cli::GlobalOpts;
use crate::container;
use crate::lock::ContainerLock;
use crate::signals;

#[derive(Args, Debug)]
pub struct Kill {
    /// Send the signal to every process in the container, not only its init
    #[arg(short, long)]
    pub all: bool,

    /// Container id
    pub id: String,

    /// Signal name (TERM, SIGTERM) or number (15)
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

impl Kill {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        let sig = signals::parse(&self.signal)?;
        container::validate_id(&self.id)?;
        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let c = container::load(&g.root, &self.id)?;
        let status = c.status();
        let stopped = matches!(status, ContainerStatus::Stopped | ContainerStatus::Creating);
        if stopped && !self.all {
            bail!("container {} is not running", self.id);
        }
        if self.all {
            let cfg = YoukiConfig::load(&c.root).context("cannot read container config")?;
            return signal_all(&c, &cfg.cgroup_path, sig);
        }
        let pid = c.pid().context("container has no init pid")?;
        match kill(pid, sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(e).with_context(|| format!("kill {sig} to pid {pid}")),
        }
        if status == ContainerStatus::Paused && sig == Signal::SIGKILL {
            // A frozen process cannot die; thaw so SIGKILL takes effect.
            let cfg = YoukiConfig::load(&c.root).context("cannot read container config")?;
            cgroup_manager(&c, &cfg.cgroup_path)?
                .freeze(FreezerState::Thawed)
                .context("thaw")?;
        }
        Ok(())
    }
}

pub fn cgroup_manager(c: &Container, cgroup_path: &Path) -> Result<AnyCgroupManager> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: cgroup_path.to_path_buf(),
        systemd_cgroup: c.systemd(),
        container_name: c.id().to_string(),
    })
    .context("cannot open the container's cgroup")
}

/// Signals every process in the container's cgroup, frozen meanwhile so none
/// can fork away; thawed after so SIGKILL and SIGTERM take effect.
pub fn signal_all(c: &Container, cgroup_path: &Path, sig: Signal) -> Result<()> {
    let manager = cgroup_manager(c, cgroup_path)?;
    let was_paused = c.status() == ContainerStatus::Paused;
    let _ = manager.freeze(FreezerState::Frozen);
    let pids = manager.get_all_pids();
    let mut result = Ok(());
    match pids {
        Ok(pids) => {
            for pid in pids {
                match kill(pid, sig) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => result = Err(e).with_context(|| format!("kill {sig} to pid {pid}")),
                }
            }
        }
        Err(e) => result = Err(anyhow::anyhow!("cannot list container processes: {e}")),
    }
    if !was_paused || sig == Signal::SIGKILL {
        let _ = manager.freeze(FreezerState::Thawed);
    }
    result
}
