//! `attach`: a running container's output here and our input to it.

use anyhow::{bail, Result};
use clap::Args;

use crate::container::status;
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    pub container: String,
}

pub fn run(engine: &Engine, a: AttachArgs) -> Result<i32> {
    let c = engine.containers.find(&a.container)?;
    if !status::is_running(&status::current(&engine.containers.dir(&c.id))) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let session = crate::logs::Session::prepare(engine, &c, false)?;
    session.attach(engine, !a.no_stdin)
}
