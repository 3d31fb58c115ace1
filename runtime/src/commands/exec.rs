//! `skiff exec`: placeholder until the exec subcommand lands.

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::GlobalOpts;

#[derive(Args, Debug)]
pub struct Exec {
    /// Container id
    pub id: String,
}

impl Exec {
    pub fn exec(self, _g: &GlobalOpts) -> Result<i32> {
        bail!("exec is not implemented yet")
    }
}
