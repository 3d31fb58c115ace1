//! `kill`: a signal (KILL by default) to the container's init.

use anyhow::{bail, Result};
use clap::Args;

use crate::container::status;
use crate::engine::Engine;
use crate::lifecycle::parse_signal;

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(engine: &Engine, a: KillArgs) -> Result<i32> {
    let signal = parse_signal(&a.signal)?;
    super::for_each(engine, &a.containers, |engine, c, name| {
        let dir = engine.containers.dir(&c.id);
        if !status::is_running(&status::current(&dir)) {
            bail!(
                "Cannot kill container: {name}: container {} is not running",
                c.id
            );
        }
        // docker: a kill is the user stopping it unless the signal is harmless.
        if matches!(
            signal,
            libc::SIGKILL | libc::SIGTERM | libc::SIGINT | libc::SIGQUIT
        ) {
            let _ = std::fs::write(dir.stop_marker(), b"");
        }
        let m = engine.monitor.connect(&dir.bundle(), &c.id)?;
        m.kill("", signal as u32, false)?;
        println!("{name}");
        Ok(())
    })
}
