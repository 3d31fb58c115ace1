//! `skiff ps`: placeholder until this subcommand lands.

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::GlobalOpts;

#[derive(Args, Debug)]
pub struct Ps {}

impl Ps {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        bail!("ps is not implemented yet")
    }
}
