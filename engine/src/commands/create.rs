//! `create`: make a container, print its id.

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;
use crate::options::ContainerOptions;

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOptions,
    /// The image (NAME[:TAG] or a digest)
    pub image: String,
    /// The command and its arguments (instead of the image's CMD)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(engine: &Engine, a: CreateArgs) -> Result<i32> {
    let c = crate::lifecycle::create(engine, &a.opts, &a.image, &a.command, a.opts.pull)?;
    println!("{}", c.id);
    Ok(0)
}
