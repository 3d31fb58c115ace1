//! `skiff state`: the container's OCI state as JSON, as runc prints it.

use anyhow::Result;
use clap::Args;

use crate::cli::GlobalOpts;
use crate::container;
use crate::lock::ContainerLock;

#[derive(Args, Debug)]
pub struct State {
    /// Container id
    pub id: String,
}

impl State {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let c = container::load(&g.root, &self.id)?;
        let text = serde_json::to_string_pretty(&container::oci_state(&c))?;
        println!("{text}");
        Ok(())
    }
}
