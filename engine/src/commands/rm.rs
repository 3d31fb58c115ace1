//! `rm`: remove containers.

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(engine: &Engine, a: RmArgs) -> Result<i32> {
    super::for_each(engine, &a.containers, |engine, c, name| {
        let policy = if a.volumes {
            crate::lifecycle::VolumePolicy::All
        } else {
            crate::lifecycle::VolumePolicy::Keep
        };
        crate::lifecycle::remove(engine, c, a.force, policy)?;
        println!("{name}");
        Ok(())
    })
}
