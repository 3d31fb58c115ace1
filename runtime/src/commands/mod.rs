//! One file per subcommand; each has a clap struct and `exec()`.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let g = &cli.global;
    match cli.command {
        Command::Create(c) => c.exec(g).map(|_| 0),
        Command::Start(c) => c.exec(g).map(|_| 0),
        Command::Run(c) => c.exec(g),
        Command::State(c) => c.exec(g).map(|_| 0),
        Command::Kill(c) => c.exec(g).map(|_| 0),
        Command::Delete(c) => c.exec(g).map(|_| 0),
        Command::Exec(c) => c.exec(g),
        Command::Ps(c) => c.exec(g).map(|_| 0),
        Command::List(c) => c.exec(g).map(|_| 0),
        Command::Pause(c) => c.exec(g).map(|_| 0),
        Command::Resume(c) => c.exec(g).map(|_| 0),
        Command::Events(c) => c.exec(g).map(|_| 0),
        Command::Update(c) => c.exec(g).map(|_| 0),
        Command::Features(c) => c.exec(g).map(|_| 0),
        Command::Spec(c) => c.exec(g).map(|_| 0),
        Command::Checkpoint(c) => c.exec(g).map(|_| 0),
        Command::Restore(c) => c.exec(g).map(|_| 0),
    }
}
