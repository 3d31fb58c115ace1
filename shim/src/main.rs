//! containerd-shim-skiff-v2: containerd's shim v2 over skiff (or any runc-compatible
//! binary). containerd runs `<shim> FLAGS start` in the bundle to get a shim address,
//! talks the Task API to it over ttrpc (as `containerd.task.v2.Task` and
//! `containerd.task.v3.Task`), and runs `<shim> FLAGS -bundle DIR delete` when the
//! shim died. With no action the binary is the shim server itself.

mod console;
mod container;
mod delete;
mod events;
mod flags;
mod info;
mod io;
mod logging;
mod monitor;
mod mount;
mod oom;
mod options;
mod process;
mod reaper;
mod runtime;
mod server;
mod service;
mod socket;
mod start;
mod stats;

use std::process::ExitCode;

use flags::{Action, Flags};

fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: {e}\n\n{}", flags::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match flags.action {
        Action::Help => {
            println!("{}", flags::USAGE);
            Ok(())
        }
        Action::Version => {
            println!("containerd-shim-skiff-v2 {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Action::Info => info::run(flags.debug),
        Action::Start => start::run(&flags),
        Action::Delete => delete::run(&flags),
        Action::Serve => server::run(&flags),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: {e:#}");
            ExitCode::FAILURE
        }
    }
}
