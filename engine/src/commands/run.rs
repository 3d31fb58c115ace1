//! `run`: create a container and start it, in the background (`-d`) or
//! attached: its output here, our input to it (`-i`), its exit code ours.

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;
use crate::lock;
use crate::options::ContainerOptions;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run the container in the background and print its ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub opts: ContainerOptions,
    /// The image (NAME[:TAG] or a digest)
    pub image: String,
    /// The command and its arguments (instead of the image's CMD)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(engine: &Engine, a: RunArgs) -> Result<i32> {
    let t0 = std::time::Instant::now();
    let c = crate::lifecycle::create(engine, &a.opts, &a.image, &a.command, a.opts.pull)?;
    tracing::debug!("run {}: created at {:?}", c.name, t0.elapsed());
    let session = if a.detach {
        None
    } else {
        Some(crate::logs::Session::prepare(engine, &c, true)?)
    };
    {
        let _lock = lock::container(&engine.layout.locks(), &c.id)?;
        let mut c = engine.containers.load(&c.id)?;
        if let Err(e) = crate::lifecycle::start(engine, &mut c) {
            // `run` leaves nothing behind when the container cannot start.
            let _ = crate::lifecycle::remove(
                engine,
                &mut c,
                true,
                crate::lifecycle::VolumePolicy::Anonymous,
            );
            return Err(e);
        }
    }
    let Some(session) = session else {
        println!("{}", c.id);
        return Ok(0);
    };
    tracing::debug!("run {}: started at {:?}", c.name, t0.elapsed());
    let code = session.attach(engine, a.opts.interactive)?;
    tracing::debug!("run {}: exited at {:?}", c.name, t0.elapsed());
    let _lock = lock::container(&engine.layout.locks(), &c.id)?;
    if let Ok(mut c) = engine.containers.load(&c.id) {
        // The monitor's cleanup may not have run yet: tear down here.
        crate::lifecycle::refresh(engine, &mut c)?;
    }
    tracing::debug!("run {}: cleaned up at {:?}", c.name, t0.elapsed());
    Ok(code)
}
