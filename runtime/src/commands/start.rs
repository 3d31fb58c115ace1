//! `skiff start`: run the user process of a created container. Poststart hooks
//! run here; one that fails is a warning and the container keeps running.

use anyhow::{bail, Result};
use clap::Args;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;

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

pub fn start_loaded(c: &mut Container) -> Result<()> {
    match c.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => bail!("cannot start a container that has stopped"),
        ContainerStatus::Running | ContainerStatus::Paused => {
            bail!("cannot start an already running container")
        }
        ContainerStatus::Creating => bail!("cannot start a container that is still being created"),
    }
    match c.start() {
        Ok(()) => Ok(()),
        Err(LibcontainerError::Hook(e)) => {
            tracing::warn!(target: "skiff", "poststart hook failed: {e}");
            Ok(())
        }
        Err(e) => Err(explain(e)),
    }
}
