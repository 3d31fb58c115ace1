//! `up`: build what needs building, make the project's networks and
//! volumes, then create (or keep, or recreate) each service's containers in
//! dependency order, waiting for `depends_on` conditions; attached, stream
//! their logs until they stop or Ctrl-C stops them.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use skiff_specs::monitor::Status;
use skiff_specs::Image;

use super::{convert, resources, service_containers, ComposeArgs, HASH_LABEL};
use crate::compose::{config_hash, DependencyCondition, Project, Service};
use crate::container::{status, Container};
use crate::engine::Engine;
use crate::lifecycle;
use crate::lock;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Wait for services to be running|healthy (implies detached mode)
    #[arg(long)]
    pub wait: bool,
    /// Stops all containers if any container was stopped
    #[arg(long = "abort-on-container-exit")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container
    #[arg(long = "exit-code-from")]
    pub exit_code_from: Option<String>,
    /// Scale SERVICE to NUM instances (SERVICE=NUM)
    #[arg(long)]
    pub scale: Vec<String>,
    /// Timeout in seconds for stopping containers being recreated
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

/// The longest `up` waits for a dependency's condition (a health check that
/// never decides, a job that never ends).
const DEPENDENCY_LIMIT: Duration = Duration::from_secs(600);

/// Whether the image the service runs is there (or can be pulled).
fn service_image(engine: &Engine, project: &Project, svc: &Service, a: &UpArgs) -> Result<Image> {
    let store = engine.store()?;
    let name = project.image_name(svc);
    let missing = crate::image::load_local(&store, &name).is_err();
    if svc.build.is_some() && (a.build || (missing && !a.no_build)) {
        super::build::build_service(engine, project, svc, false, &[])?;
    }
    match crate::image::load_local(&store, &name) {
        Ok(i) => Ok(i),
        Err(_) if svc.build.is_none() => crate::image::resolve(
            &store,
            &name,
            crate::image::PullPolicy::Missing,
            &engine.registry,
        ),
        Err(e) => Err(e).with_context(|| format!("service {}: image {name}", svc.name)),
    }
}

/// Waits for `dep`'s containers to meet `cond`.
fn wait_dependency(
    engine: &Engine,
    project: &Project,
    svc: &str,
    dep: &str,
    cond: DependencyCondition,
) -> Result<()> {
    let deadline = Instant::now() + DEPENDENCY_LIMIT;
    let mut announced = false;
    loop {
        let containers = service_containers(engine, &project.name, dep)?;
        if containers.is_empty() {
            bail!("service {svc} depends on {dep}, which has no container");
        }
        let mut ready = true;
        for (_, c) in &containers {
            let st = status::current(&engine.containers.dir(&c.id));
            match cond {
                DependencyCondition::Started => {
                    ready &= st.status != Status::Created;
                }
                DependencyCondition::Healthy => {
                    if st.status == Status::Exited {
                        bail!(
                            "dependency failed to start: container {} exited ({})",
                            c.name,
                            st.exit_code
                        );
                    }
                    match st.health.as_ref().map(|h| h.status.as_str()) {
                        None => bail!("container {} has no healthcheck configured", c.name),
                        Some("unhealthy") => bail!(
                            "dependency failed to start: container {} is unhealthy",
                            c.name
                        ),
                        Some("healthy") => {}
                        _ => ready = false,
                    }
                }
                DependencyCondition::CompletedSuccessfully => match st.status {
                    Status::Exited if st.exit_code == 0 => {}
                    Status::Exited => bail!(
                        "service {dep} didn't complete successfully: exit {}",
                        st.exit_code
                    ),
                    _ => ready = false,
                },
            }
        }
        if ready {
            return Ok(());
        }
        if !announced {
            eprintln!(" Container {}  Waiting", containers[0].1.name);
            announced = true;
        }
        if Instant::now() > deadline {
            bail!("service {svc}: gave up waiting for {dep} after {DEPENDENCY_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates container `number` of `svc` and returns it (not started).
fn create(
    engine: &Engine,
    project: &Project,
    svc: &Service,
    number: u32,
    image: &Image,
) -> Result<Container> {
    let (config, host) = convert::container(project, svc, number, &image.config)?;
    let name = project.container_name(svc, number);
    eprintln!(" Container {name}  Creating");
    let image_ref = project.image_name(svc);
    lifecycle::create_record(engine, Some(&name), &image_ref, image, config, host)
}

fn start(engine: &Engine, c: &Container) -> Result<()> {
    let _lock = lock::container(&engine.layout.locks(), &c.id)?;
    let mut c = engine.containers.load(&c.id)?;
    eprintln!(" Container {}  Starting", c.name);
    lifecycle::start(engine, &mut c)?;
    eprintln!(" Container {}  Started", c.name);
    Ok(())
}

pub fn remove_container(engine: &Engine, c: &Container, timeout: Option<u64>) -> Result<()> {
    let _lock = lock::container(&engine.layout.locks(), &c.id)?;
    let mut c = engine.containers.load(&c.id)?;
    lifecycle::stop(engine, &mut c, timeout)?;
    lifecycle::remove(engine, &mut c, true, lifecycle::VolumePolicy::Anonymous)
}

/// Brings one service to its desired containers; returns the ones it runs.
fn converge(
    engine: &Engine,
    project: &Project,
    svc: &Service,
    replicas: u32,
    image: &Image,
    a: &UpArgs,
) -> Result<Vec<Container>> {
    let hash = config_hash(svc);
    let image_id = image.manifest.config.digest.to_string();
    let existing = service_containers(engine, &project.name, &svc.name)?;
    let mut out = Vec::new();
    for number in 1..=replicas {
        let current = existing.iter().find(|(n, _)| *n == number).map(|(_, c)| c);
        let c = match current {
            Some(c)
                if !a.force_recreate
                    && c.config.labels.get(HASH_LABEL) == Some(&hash)
                    && c.image_id == image_id =>
            {
                let st = status::current(&engine.containers.dir(&c.id));
                if status::is_running(&st) {
                    eprintln!(" Container {}  Running", c.name);
                } else {
                    start(engine, c)?;
                }
                c.clone()
            }
            Some(c) => {
                eprintln!(" Container {}  Recreate", c.name);
                remove_container(engine, c, a.timeout)?;
                let fresh = create(engine, project, svc, number, image)?;
                start(engine, &fresh)?;
                fresh
            }
            None => {
                let fresh = create(engine, project, svc, number, image)?;
                start(engine, &fresh)?;
                fresh
            }
        };
        out.push(c);
    }
    for (n, c) in &existing {
        if *n > replicas {
            eprintln!(" Container {}  Removing", c.name);
            remove_container(engine, c, a.timeout)?;
        }
    }
    Ok(out)
}

pub fn run(engine: &Engine, a: &ComposeArgs, u: &UpArgs) -> Result<i32> {
    let project = super::project(a, &u.services)?;
    let selected = super::selected(&project, &u.services)?;
    let order = project.dependency_order(&selected, !u.no_deps)?;
    let mut scale = std::collections::BTreeMap::new();
    for s in &u.scale {
        let (name, n) = s
            .split_once('=')
            .and_then(|(k, v)| Some((k.to_owned(), v.parse::<u32>().ok()?)))
            .with_context(|| format!("invalid --scale value {s:?}: use SERVICE=NUM"))?;
        if project.service(&name).is_none() {
            bail!("--scale {s}: no such service: {name}");
        }
        scale.insert(name, n);
    }
    // Orphans: containers of services the file no longer has.
    for c in super::containers(engine, &project.name, false)? {
        let svc = c
            .config
            .labels
            .get(super::SERVICE_LABEL)
            .cloned()
            .unwrap_or_default();
        if project.service(&svc).is_none() && !project.disabled_services.contains(&svc) {
            if u.remove_orphans {
                eprintln!(" Container {}  Removing orphan", c.name);
                remove_container(engine, &c, u.timeout)?;
            } else {
                eprintln!(
                    "WARN[0000] Found orphan containers ([{}]) for this project. Use --remove-orphans to clean them up.",
                    c.name
                );
            }
        }
    }
    // Images first: a build that fails leaves nothing started.
    let mut images = Vec::new();
    for name in &order {
        let svc = project.service(name).context("service vanished")?;
        images.push(service_image(engine, &project, svc, u)?);
    }
    resources::ensure_networks(engine, &project)?;
    resources::ensure_volumes(engine, &project)?;
    let mut running: Vec<Container> = Vec::new();
    for (name, image) in order.iter().zip(&images) {
        let svc = project.service(name).context("service vanished")?;
        for (dep, d) in &svc.depends_on {
            if project.service(dep).is_none() && !d.required {
                continue;
            }
            if u.no_deps && !selected.contains(dep) {
                continue;
            }
            wait_dependency(engine, &project, name, dep, d.condition)?;
        }
        let replicas = scale.get(name).copied().unwrap_or(svc.replicas);
        running.extend(converge(engine, &project, svc, replicas, image, u)?);
    }
    if u.wait {
        for c in &running {
            let svc = c
                .config
                .labels
                .get(super::SERVICE_LABEL)
                .cloned()
                .unwrap_or_default();
            let cond = if c.config.healthcheck.is_some() {
                DependencyCondition::Healthy
            } else {
                DependencyCondition::Started
            };
            wait_dependency(engine, &project, &svc, &svc, cond)?;
        }
        return Ok(0);
    }
    if u.detach {
        return Ok(0);
    }
    let exit_from = u.exit_code_from.clone();
    let abort = u.abort_on_container_exit || exit_from.is_some();
    let code = super::logs::follow(engine, &running, abort, exit_from.as_deref())?;
    // Ctrl-C, or --abort-on-container-exit: stop the project's containers.
    if code.stop_all {
        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        for c in running.iter().rev() {
            let _lock = lock::container(&engine.layout.locks(), &c.id)?;
            if let Ok(mut c) = engine.containers.load(&c.id) {
                eprintln!(" Container {}  Stopping", c.name);
                lifecycle::stop(engine, &mut c, u.timeout)?;
                eprintln!(" Container {}  Stopped", c.name);
            }
        }
    }
    Ok(code.exit)
}
