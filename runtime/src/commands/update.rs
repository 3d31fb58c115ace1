//! `skiff update`: placeholder until this subcommand lands.

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::GlobalOpts;

#[derive(Args, Debug)]
pub struct Update {}

impl Update {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        bail!("update is not implemented yet")
    }
}
