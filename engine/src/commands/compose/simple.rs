//! The service-wide commands that apply one engine command to each of the
//! selected services' containers: start, stop, restart, kill, rm, pause,
//! unpause, top, port, images, cp, wait.

use anyhow::{bail, Result};
use clap::Args;

use super::{ComposeArgs, SERVICE_LABEL};
use crate::container::{status, Container};
use crate::engine::Engine;
use crate::{lifecycle, lock};

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short = 's', long, default_value = "SIGKILL")]
    pub signal: String,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// Index of the container if the service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    pub service: String,
    pub private_port: u16,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// SERVICE:SRC_PATH or a host path
    pub src: String,
    /// A host path or SERVICE:DEST_PATH
    pub dest: String,
}

/// The selected services' containers, in dependency order.
fn targets(engine: &Engine, a: &ComposeArgs, services: &[String]) -> Result<Vec<Container>> {
    let project = super::project(a, services)?;
    let names = super::selected(&project, services)?;
    let order = project.dependency_order(&names, false)?;
    let mut out = Vec::new();
    for n in &order {
        out.extend(
            super::service_containers(engine, &project.name, n)?
                .into_iter()
                .map(|(_, c)| c),
        );
    }
    Ok(out)
}

fn each(
    engine: &Engine,
    containers: &[Container],
    verb: &str,
    mut f: impl FnMut(&mut Container) -> Result<()>,
) -> Result<i32> {
    let mut failed = false;
    for c in containers {
        let result = (|| -> Result<()> {
            let _lock = lock::container(&engine.layout.locks(), &c.id)?;
            let mut c = engine.containers.load(&c.id)?;
            f(&mut c)
        })();
        match result {
            Ok(()) => eprintln!(" Container {}  {verb}", c.name),
            Err(e) => {
                eprintln!("Error: {}: {e:#}", c.name);
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn start(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs) -> Result<i32> {
    let cs = targets(engine, a, &s.services)?;
    each(engine, &cs, "Started", |c| lifecycle::start(engine, c))
}

pub fn stop(engine: &Engine, a: &ComposeArgs, s: &StopArgs, restart: bool) -> Result<i32> {
    let mut cs = targets(engine, a, &s.services)?;
    if restart {
        return each(engine, &cs, "Restarted", |c| {
            lifecycle::stop(engine, c, s.timeout)?;
            lifecycle::start(engine, c)
        });
    }
    cs.reverse();
    each(engine, &cs, "Stopped", |c| {
        lifecycle::stop(engine, c, s.timeout)
    })
}

pub fn kill(engine: &Engine, a: &ComposeArgs, k: &KillArgs) -> Result<i32> {
    let signal = lifecycle::parse_signal(&k.signal)?;
    let cs = targets(engine, a, &k.services)?;
    each(engine, &cs, "Killed", |c| {
        let dir = engine.containers.dir(&c.id);
        if !status::is_running(&status::current(&dir)) {
            return Ok(());
        }
        let _ = std::fs::write(dir.stop_marker(), b"");
        engine
            .monitor
            .connect(&dir.bundle(), &c.id)?
            .kill("", signal as u32, false)
    })
}

pub fn rm(engine: &Engine, a: &ComposeArgs, r: &RmArgs) -> Result<i32> {
    let cs = targets(engine, a, &r.services)?;
    let policy = if r.volumes {
        lifecycle::VolumePolicy::Anonymous
    } else {
        lifecycle::VolumePolicy::Keep
    };
    each(engine, &cs, "Removed", |c| {
        let running = status::is_running(&status::current(&engine.containers.dir(&c.id)));
        if running && !r.stop {
            return Ok(());
        }
        lifecycle::remove(engine, c, r.stop, policy)
    })
}

pub fn pause(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs, pause: bool) -> Result<i32> {
    let cs = targets(engine, a, &s.services)?;
    let verb = if pause { "Paused" } else { "Unpaused" };
    each(engine, &cs, verb, |c| {
        let dir = engine.containers.dir(&c.id);
        let m = engine.monitor.connect(&dir.bundle(), &c.id)?;
        if pause {
            m.pause()
        } else {
            m.resume()
        }
    })
}

pub fn top(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs) -> Result<i32> {
    for c in targets(engine, a, &s.services)? {
        if !status::is_running(&status::current(&engine.containers.dir(&c.id))) {
            continue;
        }
        println!("{}", c.name);
        crate::commands::top::run(
            engine,
            crate::commands::top::TopArgs {
                container: c.id.clone(),
                ps_args: Vec::new(),
            },
        )?;
        println!();
    }
    Ok(0)
}

pub fn port(engine: &Engine, a: &ComposeArgs, p: &PortArgs) -> Result<i32> {
    let project = super::project(a, &[])?;
    let containers = super::service_containers(engine, &project.name, &p.service)?;
    let Some((_, c)) = containers.iter().find(|(n, _)| *n == p.index) else {
        bail!("no container found for {}_{}", p.service, p.index);
    };
    for m in lifecycle::attachment_ports(c) {
        if m.container_port == p.private_port && m.protocol.to_string() == p.protocol {
            let ip = m
                .host_ip
                .map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string());
            println!("{ip}:{}", m.host_port);
        }
    }
    Ok(0)
}

pub fn images(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs) -> Result<i32> {
    println!(
        "{:<30} {:<30} {:<12} IMAGE ID",
        "CONTAINER", "REPOSITORY", "TAG"
    );
    for c in targets(engine, a, &s.services)? {
        let (repo, tag) = c
            .image
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .unwrap_or((c.image.as_str(), "latest"));
        let id: String = c
            .image_id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        println!("{:<30} {repo:<30} {tag:<12} {id}", c.name);
    }
    Ok(0)
}

pub fn cp(engine: &Engine, a: &ComposeArgs, c: &CpArgs) -> Result<i32> {
    let project = super::project(a, &[])?;
    let resolve = |s: &str| -> Result<String> {
        match s.split_once(':') {
            Some((svc, path)) if !s.starts_with('/') && !s.starts_with('.') => {
                let cs = super::service_containers(engine, &project.name, svc)?;
                let Some((_, c)) = cs.first() else {
                    bail!("no container found for service {svc}");
                };
                Ok(format!("{}:{path}", c.id))
            }
            _ => Ok(s.to_owned()),
        }
    };
    crate::commands::cp::run(
        engine,
        crate::commands::cp::CpArgs {
            src: resolve(&c.src)?,
            dest: resolve(&c.dest)?,
        },
    )
}

pub fn wait(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs) -> Result<i32> {
    let cs = targets(engine, a, &s.services)?;
    let mut code = 0;
    for c in &cs {
        if let Some(st) = lifecycle::wait_exit(&engine.containers.dir(&c.id), None) {
            let svc = c
                .config
                .labels
                .get(SERVICE_LABEL)
                .cloned()
                .unwrap_or_default();
            println!("{svc} {}", st.exit_code);
            code = st.exit_code;
        }
    }
    Ok(code)
}
