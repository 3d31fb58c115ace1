//! `wait`: block until containers stop; print each exit code.

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;
use crate::lifecycle::wait_exit;

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(engine: &Engine, a: WaitArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.containers {
        match engine.containers.find(name) {
            Ok(c) => {
                let dir = engine.containers.dir(&c.id);
                if let Some(st) = wait_exit(&dir, None) {
                    println!("{}", st.exit_code);
                }
            }
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}
