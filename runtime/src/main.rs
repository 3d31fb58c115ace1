//! `skiff`: a runc-compatible OCI runtime built on youki's libcontainer.

mod cgroupfs;
mod cli;
mod commands;
mod container;
mod copyup;
mod error;
mod exe_guard;
mod executor;
mod foreground;
mod host_mounts;
mod lock;
mod logging;
mod oom_watch;
mod signals;
mod spec_fixups;
mod stats;
mod units;

use clap::Parser;

fn main() {
    // First, before anything else costs time: a protected binary for commands
    // that enter a container (see exe_guard). A failure is reported below.
    let guard = if exe_guard::needed_for(&std::env::args_os().collect::<Vec<_>>()) {
        exe_guard::ensure_protected()
    } else {
        Ok(())
    };
    let cli = cli::Cli::parse();
    let log_guard = logging::init(&cli.global);
    let code = match guard.and_then(|()| commands::dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            error::report(&err, log_guard.as_ref());
            1
        }
    };
    std::process::exit(code);
}
