//! The command line: runc 1.1's global flags and subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands;

/// clap prints "skiff " before this: the first line reads "skiff version X" as
/// runc's and crun's do, the shape `docker info` parses from `--version`.
const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\nspec: 1.2.0\nlibcontainer: 0.7.0"
);

const LONG_ABOUT: &str = "\
skiff is a runc-compatible OCI runtime. It creates and runs containers from OCI
bundles (a directory holding config.json and a root filesystem) and accepts
runc 1.1's subcommands, flags, exit codes and JSON output, so containerd,
podman and buildah can use it in place of runc.

A container's life: `skiff create --bundle DIR ID` sets it up and stops before
the user process, `skiff start ID` runs the process, `skiff kill ID [SIGNAL]`
signals it, `skiff delete ID` removes what is left. `skiff run` does create
and start in one step and, unless --detach, waits and returns the process's
exit code (128+N when it died of signal N).";

/// skiff: a runc-compatible OCI runtime
#[derive(Parser, Debug)]
#[command(name = "skiff", version = VERSION, long_about = LONG_ABOUT)]
#[command(disable_version_flag = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags placed before the subcommand, as with runc.
#[derive(clap::Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Directory that holds the state of the containers (one subdirectory per container)
    #[arg(long, global = true, default_value = "/run/skiff", value_name = "DIR")]
    pub root: PathBuf,

    /// Write log records to this file instead of stderr
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of log records: text (logfmt, as runc) or json (one object per line:
    /// level, msg, time; what containerd and podman read)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log debug records as well
    #[arg(long, global = true)]
    pub debug: bool,

    /// Manage cgroups through systemd (cgroupsPath is then "slice:prefix:name")
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,

    /// Run without root privileges: true, false or auto (accepted for runc compatibility)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,

    /// Path of the criu binary used by checkpoint and restore
    #[arg(long, global = true, value_name = "PATH", default_value = "criu")]
    pub criu: PathBuf,

    /// Print the version
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`
    Create(commands::create::Create),
    /// Run the user process of a created container
    Start(commands::start::Start),
    /// Create and start a container; wait for it unless --detach
    Run(commands::run::Run),
    /// Print the state of a container as JSON
    State(commands::state::State),
    /// Send a signal to the container's init process (default SIGTERM)
    Kill(commands::kill::Kill),
    /// Delete a container and every resource it holds
    Delete(commands::delete::Delete),
    /// Run a new process inside a running container
    Exec(commands::exec::Exec),
    /// List the processes running inside a container
    Ps(commands::ps::Ps),
    /// List the containers under --root
    List(commands::list::List),
    /// Suspend every process of a container (cgroup freezer)
    Pause(commands::pause::Pause),
    /// Resume a paused container
    Resume(commands::resume::Resume),
    /// Print container events and resource statistics
    Events(commands::events::Events),
    /// Change the resource limits of a running container
    Update(commands::update::Update),
    /// Print the features this runtime supports, as JSON
    Features(commands::features::Features),
    /// Write a starter config.json into a bundle
    Spec(commands::spec::SpecCmd),
    /// Checkpoint a running container (needs CRIU)
    Checkpoint(commands::checkpoint::Checkpoint),
    /// Restore a container from a checkpoint (needs CRIU)
    Restore(commands::checkpoint::Restore),
}
