//! `skiffctl`: a daemonless docker-style engine. Containers are created from
//! images in skiff's store, run by the `skiff` runtime and supervised by
//! `containerd-shim-skiff-v2` (one monitor per container group, no daemon).

mod cli;
mod commands;
mod compose;
mod container;
mod copy;
mod engine;
mod ids;
mod image;
mod inspect;
mod lifecycle;
mod lock;
mod logs;
mod monitor;
mod mounts;
mod options;
mod paths;
mod rootfs;
mod snapshots;
mod spec;
mod terminal;
mod volumes;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let level = if cli.debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
    let (result, error_code) = commands::dispatch(cli);
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            error_code
        }
    };
    std::process::exit(code);
}
