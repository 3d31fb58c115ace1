//! `stop` and `restart`.

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for the container to stop before killing it
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<u64>,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub type RestartArgs = StopArgs;

pub fn run(engine: &Engine, a: StopArgs) -> Result<i32> {
    super::for_each(engine, &a.containers, |engine, c, name| {
        crate::lifecycle::stop(engine, c, a.time)?;
        println!("{name}");
        Ok(())
    })
}

pub fn restart(engine: &Engine, a: RestartArgs) -> Result<i32> {
    super::for_each(engine, &a.containers, |engine, c, name| {
        crate::lifecycle::stop(engine, c, a.time)?;
        crate::lifecycle::start(engine, c)?;
        println!("{name}");
        Ok(())
    })
}
