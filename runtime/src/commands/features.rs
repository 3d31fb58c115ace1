//! `skiff features`: placeholder until this subcommand lands.

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::GlobalOpts;

#[derive(Args, Debug)]
pub struct Features {}

impl Features {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        bail!("features is not implemented yet")
    }
}
