//! skiffctl's command line: docker's commands and flag names.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::*;

/// A daemonless docker-style container engine.
///
/// Images come from skiff's store (`skiffctl build`, `skiffctl pull`);
/// containers run on the `skiff` runtime, each supervised by a monitor
/// process (containerd-shim-skiff-v2) that keeps its logs, health checks and
/// restart policy, so detached containers outlive skiffctl with no daemon.
#[derive(Debug, Parser)]
#[command(name = "skiffctl", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Keep all state below DIR instead of /var/lib/skiff and /run/skiff-engine
    #[arg(long, global = true, env = "SKIFFCTL_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Verbose logs on stderr
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,

    /// Registries (host[:port]) spoken to over plain HTTP
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(create::CreateArgs),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// Stop one or more running containers
    Stop(stop::StopArgs),
    /// Restart one or more containers
    Restart(stop::RestartArgs),
    /// Kill one or more running containers
    Kill(kill::KillArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Attach to a running container's input and output
    Attach(attach::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::WaitArgs),
    /// Return low-level information on containers, images, volumes or networks
    Inspect(inspect::InspectArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Pause all processes within one or more containers
    Pause(pause::PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(pause::PauseArgs),
    /// List port mappings of a container
    Port(port::PortArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Inspect changes to files on a container's filesystem
    Diff(diff::DiffArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Display a live stream of container resource usage statistics
    Stats(stats::StatsArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Build an image from a Dockerfile (skiff-build's flags)
    Build(transfer::BuildArgs),
    /// Download an image from a registry
    Pull(transfer::PullArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Save one or more images to a tar archive (docker format)
    Save(transfer::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Log in to a registry
    Login(transfer::LoginArgs),
    /// Log out from a registry
    Logout(transfer::LogoutArgs),
    /// Define and run multi-container applications (docker compose v2)
    Compose(compose::ComposeArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage skiffctl: disk usage, prune, info
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Display system-wide information
    Info,
    /// Show the skiffctl version
    Version,
    /// Tear down what a stopped container had (run by its monitor)
    #[command(hide = true, name = "container-cleanup")]
    ContainerCleanup { id: String },
}
