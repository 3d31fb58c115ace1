//! `skiffctl compose`: multi-container applications from compose files, on
//! the engine (docker compose v2's commands and flags). The file model is
//! `crate::compose`; this is what runs it.

mod build;
mod convert;
mod down;
mod exec;
mod logs;
mod ps;
mod resources;
mod simple;
mod up;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::compose::{load, LoadOptions, Project};
use crate::container::Container;
use crate::engine::Engine;

pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";
pub const HASH_LABEL: &str = "com.docker.compose.config-hash";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose configuration files (repeatable; later ones merge into earlier ones)
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Project name (default: the project directory's name)
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the first file's directory)
    #[arg(long = "project-directory")]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (instead of .env)
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Enable services of these profiles
    #[arg(long)]
    pub profile: Vec<String>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Create and start containers
    Up(up::UpArgs),
    /// Stop and remove containers, networks (and volumes with -v)
    Down(down::DownArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// View output from containers
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Run a one-off command on a service
    Run(exec::RunArgs),
    /// Build or rebuild services
    Build(build::BuildArgs),
    /// Pull service images
    Pull(build::ServicesArgs),
    /// Push service images
    Push(build::ServicesArgs),
    /// Parse, resolve and render the compose file in canonical format
    Config(build::ConfigArgs),
    /// Start services
    Start(simple::ServicesArgs),
    /// Stop services
    Stop(simple::StopArgs),
    /// Restart service containers
    Restart(simple::StopArgs),
    /// Force stop service containers
    Kill(simple::KillArgs),
    /// Removes stopped service containers
    Rm(simple::RmArgs),
    /// Pause services
    Pause(simple::ServicesArgs),
    /// Unpause services
    Unpause(simple::ServicesArgs),
    /// Display the running processes
    Top(simple::ServicesArgs),
    /// Print the public port for a port binding
    Port(simple::PortArgs),
    /// List images used by the created containers
    Images(simple::ServicesArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(simple::CpArgs),
    /// Block until the first service container stops
    Wait(simple::ServicesArgs),
    /// Show the Docker Compose version information
    Version,
}

/// Loads the project the global flags describe.
pub fn project(a: &ComposeArgs, services: &[String]) -> Result<Project> {
    let environment: BTreeMap<String, String> = std::env::vars().collect();
    let p = load(&LoadOptions {
        files: a.files.clone(),
        project_name: a.project_name.clone(),
        project_directory: a.project_directory.clone(),
        env_files: a.env_file.clone(),
        profiles: a.profile.clone(),
        environment,
        services: services.to_vec(),
        cwd: None,
    })?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(p)
}

/// The project's containers (one-off `run` containers included when `oneoff`).
pub fn containers(engine: &Engine, project: &str, oneoff: bool) -> Result<Vec<Container>> {
    Ok(engine
        .containers
        .list()?
        .into_iter()
        .filter(|c| {
            c.config
                .labels
                .get(PROJECT_LABEL)
                .is_some_and(|p| p == project)
        })
        .filter(|c| {
            oneoff
                || c.config
                    .labels
                    .get(ONEOFF_LABEL)
                    .is_none_or(|v| v != "True")
        })
        .collect())
}

/// A service's containers with their numbers, in number order.
pub fn service_containers(
    engine: &Engine,
    project: &str,
    service: &str,
) -> Result<Vec<(u32, Container)>> {
    let mut out: Vec<(u32, Container)> = containers(engine, project, false)?
        .into_iter()
        .filter(|c| {
            c.config
                .labels
                .get(SERVICE_LABEL)
                .is_some_and(|s| s == service)
        })
        .map(|c| {
            let n = c
                .config
                .labels
                .get(NUMBER_LABEL)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            (n, c)
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// The services a command acts on: the named ones, else every active one.
pub fn selected(project: &Project, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(project.services.iter().map(|s| s.name.clone()).collect());
    }
    for n in names {
        if project.service(n).is_none() {
            anyhow::bail!("no such service: {n}");
        }
    }
    Ok(names.to_vec())
}

pub fn run(engine: &Engine, a: ComposeArgs) -> Result<i32> {
    match &a.command {
        ComposeCommand::Up(u) => up::run(engine, &a, u),
        ComposeCommand::Down(d) => down::run(engine, &a, d),
        ComposeCommand::Ps(p) => ps::run(engine, &a, p),
        ComposeCommand::Logs(l) => logs::run(engine, &a, l),
        ComposeCommand::Exec(e) => exec::exec(engine, &a, e),
        ComposeCommand::Run(r) => exec::run(engine, &a, r),
        ComposeCommand::Build(b) => build::build(engine, &a, b),
        ComposeCommand::Pull(s) => build::pull(engine, &a, s),
        ComposeCommand::Push(s) => build::push(engine, &a, s),
        ComposeCommand::Config(c) => build::config(&a, c),
        ComposeCommand::Start(s) => simple::start(engine, &a, s),
        ComposeCommand::Stop(s) => simple::stop(engine, &a, s, false),
        ComposeCommand::Restart(s) => simple::stop(engine, &a, s, true),
        ComposeCommand::Kill(k) => simple::kill(engine, &a, k),
        ComposeCommand::Rm(r) => simple::rm(engine, &a, r),
        ComposeCommand::Pause(s) => simple::pause(engine, &a, s, true),
        ComposeCommand::Unpause(s) => simple::pause(engine, &a, s, false),
        ComposeCommand::Top(s) => simple::top(engine, &a, s),
        ComposeCommand::Port(p) => simple::port(engine, &a, p),
        ComposeCommand::Images(s) => simple::images(engine, &a, s),
        ComposeCommand::Cp(c) => simple::cp(engine, &a, c),
        ComposeCommand::Wait(s) => simple::wait(engine, &a, s),
        ComposeCommand::Version => {
            println!("skiffctl compose version {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    }
}
