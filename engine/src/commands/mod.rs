//! One file per command, as docker names them.

pub mod attach;
pub mod commit;
pub mod compose;
pub mod cp;
pub mod create;
pub mod diff;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod kill;
pub mod logs;
pub mod network;
pub mod pause;
pub mod port;
pub mod ps;
pub mod rename;
pub mod rm;
pub mod run;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod top;
pub mod transfer;
pub mod volume;
pub mod wait;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::container::Container;
use crate::engine::Engine;
use crate::lock;

/// Runs the command; returns its result and the exit code for an error
/// (docker's 125 when run, create or start fail before the container runs).
pub fn dispatch(cli: Cli) -> (Result<i32>, i32) {
    let code = match cli.command {
        Command::Run(_) | Command::Create(_) | Command::Start(_) => 125,
        _ => 1,
    };
    (run_command(cli), code)
}

fn run_command(cli: Cli) -> Result<i32> {
    let engine = Engine::open(cli.root.as_deref(), &cli.insecure_registry)?;
    match cli.command {
        Command::Run(a) => run::run(&engine, a),
        Command::Create(a) => create::run(&engine, a),
        Command::Start(a) => start::run(&engine, a),
        Command::Stop(a) => stop::run(&engine, a),
        Command::Restart(a) => stop::restart(&engine, a),
        Command::Kill(a) => kill::run(&engine, a),
        Command::Rm(a) => rm::run(&engine, a),
        Command::Ps(a) => ps::run(&engine, a),
        Command::Logs(a) => logs::run(&engine, a),
        Command::Exec(a) => exec::run(&engine, a),
        Command::Attach(a) => attach::run(&engine, a),
        Command::Wait(a) => wait::run(&engine, a),
        Command::Inspect(a) => inspect::run(&engine, a),
        Command::Top(a) => top::run(&engine, a),
        Command::Pause(a) => pause::run(&engine, a, true),
        Command::Unpause(a) => pause::run(&engine, a, false),
        Command::Port(a) => port::run(&engine, a),
        Command::Rename(a) => rename::run(&engine, a),
        Command::Diff(a) => diff::run(&engine, a),
        Command::Commit(a) => commit::run(&engine, a),
        Command::Cp(a) => cp::run(&engine, a),
        Command::Stats(a) => stats::run(&engine, a),
        Command::System(c) => system::run(&engine, c),
        Command::Info => system::run(&engine, system::SystemCommand::Info),
        Command::Volume(c) => volume::run(&engine, c),
        Command::Network(c) => network::run(&engine, c),
        Command::Images(a) => images::images(&engine, a),
        Command::Tag(a) => images::tag(&engine, a),
        Command::Rmi(a) => images::rmi(&engine, a),
        Command::History(a) => images::history(&engine, a),
        Command::Pull(a) => transfer::pull(&engine, a),
        Command::Push(a) => transfer::push(&engine, a),
        Command::Save(a) => transfer::save(&engine, a),
        Command::Load(a) => transfer::load(&engine, a),
        Command::Login(a) => transfer::login(&engine, a),
        Command::Logout(a) => transfer::logout(&engine, a),
        Command::Build(a) => transfer::build(&engine, a),
        Command::Compose(a) => compose::run(&engine, a),
        Command::Version => {
            println!("skiffctl version {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::ContainerCleanup { id } => cleanup(&engine, &id),
    }
}

/// Runs `f` on each named container under its lock, docker style: every
/// container is tried, each failure printed, and the exit code is 1 when
/// any failed. `f` prints what succeeded.
pub fn for_each(
    engine: &Engine,
    names: &[String],
    mut f: impl FnMut(&Engine, &mut Container, &str) -> Result<()>,
) -> Result<i32> {
    let mut failed = false;
    for name in names {
        let result = (|| -> Result<()> {
            let found = engine.containers.find(name)?;
            let _lock = lock::container(&engine.layout.locks(), &found.id)?;
            // Read again under the lock: another command may have changed it.
            let mut c = engine.containers.load(&found.id)?;
            f(engine, &mut c, name)
        })();
        if let Err(e) = result {
            eprintln!("Error: {e:#}");
            failed = true;
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// The monitor's on-exit command: tear down what the container had, and
/// remove it when it was started with --rm. Quiet when there is nothing left.
fn cleanup(engine: &Engine, id: &str) -> Result<i32> {
    if engine.containers.load(id).is_ok() {
        let _lock = lock::container(&engine.layout.locks(), id)?;
        if let Ok(mut c) = engine.containers.load(id) {
            crate::lifecycle::refresh(engine, &mut c)?;
        }
    }
    // A `--rm` container set aside (by us or by `run`): finish it here.
    crate::lifecycle::finish_removal(engine, id)?;
    Ok(0)
}
