//! `skiff resume`: thaw a paused container.

use anyhow::{bail, Result};
use clap::Args;
use libcontainer::container::ContainerStatus;

use crate::cli::GlobalOpts;
use crate::commands::create::explain;
use crate::container;
use crate::lock::ContainerLock;

#[derive(Args, Debug)]
pub struct Resume {
    /// Container id
    pub id: String,
}

impl Resume {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let mut c = container::load(&g.root, &self.id)?;
        if c.status() != ContainerStatus::Paused {
            bail!("container {} is not paused", self.id);
        }
        c.resume().map_err(explain)
    }
}
