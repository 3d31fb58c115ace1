//! `skiff start`: run the user process of a created container. Poststart hooks
//! run here; one that fails is a warning and the container keeps running.

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::notify_socket::{NotifySocket, NOTIFY_FILE};

use crate::cli::GlobalOpts;
use crate::commands::create::explain;
use crate::container;
use crate::lock::ContainerLock;

#[derive(Args, Debug)]
pub struct Start {
    /// Container id
    pub id: String,
}

impl Start {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let mut c = container::load(&g.root, &self.id)?;
        start_loaded(&mut c)
    }
}

/// Lets the created container's process run, then runs the poststart hooks.
/// This is libcontainer's `start` except for the hooks: each failing one is a
/// warning and the rest still run, as the runtime spec asks.
pub fn start_loaded(c: &mut Container) -> Result<()> {
    match c.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => bail!("cannot start a container that has stopped"),
        ContainerStatus::Running | ContainerStatus::Paused => {
            bail!("cannot start an already running container")
        }
        ContainerStatus::Creating => bail!("cannot start a container that is still being created"),
    }
    let config = YoukiConfig::load(&c.root)
        .with_context(|| format!("cannot read the config of container {}", c.id()))?;
    NotifySocket::new(c.root.join(NOTIFY_FILE))
        .notify_container_start()
        .with_context(|| format!("cannot start container {}", c.id()))?;
    c.set_status(ContainerStatus::Running)
        .save()
        .map_err(explain)?;
    let poststart = config.hooks.as_ref().and_then(|h| h.poststart().as_ref());
    container::run_hooks_warning("poststart", poststart, &c.state);
    Ok(())
}
