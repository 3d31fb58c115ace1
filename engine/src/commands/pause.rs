//! `pause` and `unpause`: the freezer, through the monitor.

use anyhow::{bail, Result};
use clap::Args;
use skiff_specs::monitor::Status;

use crate::container::status;
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(engine: &Engine, a: PauseArgs, pause: bool) -> Result<i32> {
    super::for_each(engine, &a.containers, |engine, c, name| {
        let dir = engine.containers.dir(&c.id);
        let st = status::current(&dir);
        match (pause, st.status) {
            (true, Status::Running) | (false, Status::Paused) => {}
            (true, Status::Paused) => bail!("Container {} is already paused", c.id),
            (false, _) => bail!("Container {} is not paused", c.id),
            (true, _) => bail!("Container {} is not running", c.id),
        }
        let m = engine.monitor.connect(&dir.bundle(), &c.id)?;
        if pause {
            m.pause()?;
        } else {
            m.resume()?;
        }
        println!("{name}");
        Ok(())
    })
}
