//! `skiff`: a runc-compatible OCI runtime built on youki's libcontainer.

mod cli;
mod commands;
mod container;
mod error;
mod executor;
mod exe_guard;
mod lock;
mod logging;
mod signals;
mod spec_fixups;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let log_guard = logging::init(&cli.global);
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            error::report(&err, log_guard.as_ref());
            1
        }
    };
    std::process::exit(code);
}
