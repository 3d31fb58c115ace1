//! `down`: stop and remove the project's containers in reverse dependency
//! order, then its networks; `-v` its named volumes, `--rmi` its images.

use anyhow::{bail, Result};
use clap::Args;

use super::{resources, ComposeArgs, SERVICE_LABEL};
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove images used by services: "local" (built ones without a custom tag) or "all"
    #[arg(long)]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
}

pub fn run(engine: &Engine, a: &ComposeArgs, d: &DownArgs) -> Result<i32> {
    if let Some(r) = d.rmi.as_deref() {
        if r != "local" && r != "all" {
            bail!("invalid --rmi value {r:?}: use local or all");
        }
    }
    let project = super::project(a, &[])?;
    let containers = super::containers(engine, &project.name, true)?;
    let mut errors = Vec::new();
    let mut levels: std::collections::BTreeMap<usize, Vec<_>> = Default::default();
    for c in containers {
        let svc = c
            .config
            .labels
            .get(SERVICE_LABEL)
            .cloned()
            .unwrap_or_default();
        let orphan = project.service(&svc).is_none() && !project.disabled_services.contains(&svc);
        if orphan && !d.remove_orphans {
            eprintln!(
                "WARN[0000] Found orphan container ({}). Use --remove-orphans to clean it up.",
                c.name
            );
            continue;
        }
        levels.entry(depth(&project, &svc)).or_default().push(c);
    }
    // Dependents before what they depend on; one level's containers stop
    // together, as docker compose does.
    for (_, level) in levels.into_iter().rev() {
        let results: Vec<(String, Result<()>)> = std::thread::scope(|s| {
            let handles: Vec<_> = level
                .iter()
                .map(|c| {
                    eprintln!(" Container {}  Stopping", c.name);
                    s.spawn(move || {
                        (
                            c.name.clone(),
                            super::up::remove_container(engine, c, d.timeout),
                        )
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (name, r) in results {
            match r {
                Ok(()) => eprintln!(" Container {name}  Removed"),
                Err(e) => errors.push(format!("container {name}: {e:#}")),
            }
        }
    }
    errors.extend(resources::remove_networks(engine, &project));
    if d.volumes {
        errors.extend(resources::remove_volumes(engine, &project));
    }
    if let Some(mode) = d.rmi.as_deref() {
        let store = engine.store()?;
        for svc in &project.services {
            let built_locally = svc.build.is_some() && svc.image.is_none();
            if mode == "all" || built_locally {
                let name = project.image_name(svc);
                if store.resolve(&name).is_ok() {
                    match store.remove(&skiff_builder::export::normalize_tag(&name)) {
                        Ok(_) => eprintln!(" Image {name}  Removed"),
                        Err(e) => errors.push(format!("image {name}: {e}")),
                    }
                }
            }
        }
        let _ = store.gc();
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(0)
}

/// How deep `svc` sits in the dependency graph: 0 for a service nothing it
/// depends on, else one more than its deepest dependency (orphans: 0).
fn depth(project: &crate::compose::Project, svc: &str) -> usize {
    fn walk(project: &crate::compose::Project, svc: &str, seen: &mut Vec<String>) -> usize {
        let Some(s) = project.service(svc) else {
            return 0;
        };
        if seen.iter().any(|x| x == svc) {
            return 0;
        }
        seen.push(svc.to_owned());
        let d = s
            .depends_on
            .keys()
            .map(|dep| 1 + walk(project, dep, seen))
            .max()
            .unwrap_or(0);
        seen.pop();
        d
    }
    walk(project, svc, &mut Vec::new())
}
