//! `skiff checkpoint` / `skiff restore`: placeholder until these land.

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::GlobalOpts;

#[derive(Args, Debug)]
pub struct Checkpoint {}

#[derive(Args, Debug)]
pub struct Restore {}

impl Checkpoint {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        bail!("checkpoint is not implemented yet")
    }
}

impl Restore {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        bail!("restore is not implemented yet")
    }
}
