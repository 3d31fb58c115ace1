//! `start`: start stopped containers; `-a` attaches to the (one) container's
//! output and returns its exit code.

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::Engine;
use crate::lock;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach the container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(engine: &Engine, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let found = engine.containers.find(name)?;
        let follower = crate::logs::Session::prepare(engine, &found, false)?;
        {
            let _lock = lock::container(&engine.layout.locks(), &found.id)?;
            let mut c = engine.containers.load(&found.id)?;
            crate::lifecycle::start(engine, &mut c)?;
        }
        return follower.attach(engine, a.interactive);
    }
    super::for_each(engine, &a.containers, |engine, c, name| {
        crate::lifecycle::start(engine, c)?;
        println!("{name}");
        Ok(())
    })
}
