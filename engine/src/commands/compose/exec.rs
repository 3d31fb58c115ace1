//! `exec` (a command in a service's running container) and `run` (a
//! one-off container of a service).

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{convert, ComposeArgs, ONEOFF_LABEL};
use crate::engine::Engine;
use crate::lock;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation (by default one is given when stdin is a terminal)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Index of the container if the service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Run as this user
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn exec(engine: &Engine, a: &ComposeArgs, e: &ExecArgs) -> Result<i32> {
    let project = super::project(a, &[])?;
    if project.service(&e.service).is_none() {
        bail!("no such service: {}", e.service);
    }
    let containers = super::service_containers(engine, &project.name, &e.service)?;
    let Some((_, c)) = containers.iter().find(|(n, _)| *n == e.index) else {
        bail!(
            "service \"{}\" is not running container #{}",
            e.service,
            e.index
        );
    };
    let tty = !e.no_tty && std::io::stdin().is_terminal();
    crate::commands::exec::run(
        engine,
        crate::commands::exec::ExecArgs {
            detach: e.detach,
            interactive: !e.detach,
            tty,
            env: e.env.clone(),
            user: e.user.clone(),
            workdir: e.workdir.clone(),
            privileged: e.privileged,
            container: c.id.clone(),
            command: e.command.clone(),
        },
    )
}

pub fn run(engine: &Engine, a: &ComposeArgs, r: &RunArgs) -> Result<i32> {
    let project = super::project(a, std::slice::from_ref(&r.service))?;
    let svc = project
        .service(&r.service)
        .with_context(|| format!("no such service: {}", r.service))?
        .clone();
    if !r.no_deps && !svc.depends_on.is_empty() {
        let deps: Vec<String> = svc.depends_on.keys().cloned().collect();
        let up = super::up::UpArgs {
            detach: true,
            build: false,
            no_build: false,
            force_recreate: false,
            no_deps: false,
            remove_orphans: false,
            wait: false,
            abort_on_container_exit: false,
            exit_code_from: None,
            scale: Vec::new(),
            timeout: None,
            services: deps,
        };
        super::up::run(engine, a, &up)?;
    }
    let store = engine.store()?;
    let image_name = project.image_name(&svc);
    let image = match crate::image::load_local(&store, &image_name) {
        Ok(i) => i,
        Err(_) if svc.build.is_some() => {
            super::build::build_service(engine, &project, &svc, false, &[])?;
            crate::image::load_local(&store, &image_name)?
        }
        Err(_) => crate::image::resolve(
            &store,
            &image_name,
            crate::image::PullPolicy::Missing,
            &engine.registry,
        )?,
    };
    super::resources::ensure_networks(engine, &project)?;
    super::resources::ensure_volumes(engine, &project)?;
    let (mut config, mut host) = convert::container(&project, &svc, 1, &image.config)?;
    // A one-off: its own name and labels, no published ports (compose's default).
    config
        .labels
        .insert(ONEOFF_LABEL.to_owned(), "True".to_owned());
    host.publish.clear();
    host.restart = skiff_specs::monitor::RestartPolicy::No;
    host.auto_remove = r.rm;
    if !r.command.is_empty() {
        config.cmd = Some(r.command.clone());
    }
    if let Some(ep) = &r.entrypoint {
        config.entrypoint = Some(if ep.is_empty() {
            Vec::new()
        } else {
            vec![ep.clone()]
        });
    }
    for e in &r.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        config
            .env
            .retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        config.env.push(e.clone());
    }
    if r.user.is_some() {
        config.user = r.user.clone();
    }
    if r.workdir.is_some() {
        config.working_dir = r.workdir.clone();
    }
    let tty = !r.no_tty && std::io::stdin().is_terminal();
    config.tty = tty;
    config.open_stdin = !r.detach;
    let name = r.name.clone().unwrap_or_else(|| {
        let suffix: String = crate::ids::new_id()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect();
        format!("{}-{}-run-{suffix}", project.name, svc.name)
    });
    let c =
        crate::lifecycle::create_record(engine, Some(&name), &image_name, &image, config, host)?;
    let session = (!r.detach)
        .then(|| crate::logs::Session::prepare(engine, &c, true))
        .transpose()?;
    {
        let _lock = lock::container(&engine.layout.locks(), &c.id)?;
        let mut c = engine.containers.load(&c.id)?;
        if let Err(err) = crate::lifecycle::start(engine, &mut c) {
            let _ = crate::lifecycle::remove(
                engine,
                &mut c,
                true,
                crate::lifecycle::VolumePolicy::Anonymous,
            );
            return Err(err);
        }
    }
    let Some(session) = session else {
        println!("{}", c.id);
        return Ok(0);
    };
    let code = session.attach(engine, true)?;
    let _lock = lock::container(&engine.layout.locks(), &c.id)?;
    if let Ok(mut c) = engine.containers.load(&c.id) {
        crate::lifecycle::refresh(engine, &mut c)?;
    }
    Ok(code)
}
