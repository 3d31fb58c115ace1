//! `skiff pause`: freeze every process of a running container.

use anyhow::{bail, Result};
use clap::Args;
use libcontainer::container::ContainerStatus;

use crate::cli::GlobalOpts;
use crate::commands::create::explain;
use crate::container;
use crate::lock::ContainerLock;

#[derive(Args, Debug)]
pub struct Pause {
    /// Container id
    pub id: String,
}

impl Pause {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let mut c = container::load(&g.root, &self.id)?;
        if c.status() != ContainerStatus::Running {
            bail!("container {} is not running", self.id);
        }
        c.pause().map_err(explain)
    }
}
