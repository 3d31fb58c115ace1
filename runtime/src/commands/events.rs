//! `skiff events`: placeholder until this subcommand lands.

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::GlobalOpts;

#[derive(Args, Debug)]
pub struct Events {}

impl Events {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        bail!("events is not implemented yet")
    }
}
