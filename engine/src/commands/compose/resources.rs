//! The project's networks and named volumes: made before its containers,
//! removed by `down` (volumes only with `-v`); external ones must exist.

use anyhow::{bail, Result};
use skiff_specs::net::CreateOptions;

use crate::compose::Project;
use crate::engine::Engine;
use crate::lifecycle::networks;

/// Network keys the project's services use (`default` unless none does).
pub fn used_networks(project: &Project) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for s in &project.services {
        if s.network_mode.is_some() {
            continue;
        }
        if s.networks.is_empty() && !keys.iter().any(|k| k == "default") {
            keys.push("default".to_owned());
        }
        for k in s.networks.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

pub fn ensure_networks(engine: &Engine, project: &Project) -> Result<()> {
    let keys = used_networks(project);
    if keys.is_empty() {
        return Ok(());
    }
    let nets = networks(engine)?;
    let _lock = crate::lock::engine(&engine.layout.locks())?;
    for key in keys {
        let name = project.network_name(&key);
        let def = project.networks.get(&key);
        if def.is_some_and(|d| d.external) {
            if nets.get(&name).is_err() {
                bail!("network {name} declared as external, but could not be found");
            }
            continue;
        }
        if nets.get(&name).is_ok() {
            continue;
        }
        eprintln!(" Network {name}  Creating");
        let mut labels = super::convert::project_labels(project, "network", &key);
        if let Some(d) = def {
            labels.extend(d.labels.clone());
        }
        let subnet = def
            .and_then(|d| d.ipam.as_ref())
            .and_then(|i| i.config.first())
            .and_then(|c| c.subnet.clone());
        nets.create(
            &name,
            &CreateOptions {
                subnet,
                internal: def.is_some_and(|d| d.internal),
                labels,
                ..Default::default()
            },
        )?;
        eprintln!(" Network {name}  Created");
    }
    Ok(())
}

pub fn ensure_volumes(engine: &Engine, project: &Project) -> Result<()> {
    for (key, def) in &project.volumes {
        let name = project.volume_name(key);
        if def.external {
            if engine.volumes.get(&name).is_err() {
                bail!("external volume \"{name}\" not found");
            }
            continue;
        }
        if engine.volumes.get(&name).is_ok() {
            continue;
        }
        let mut labels = super::convert::project_labels(project, "volume", key);
        labels.extend(def.labels.clone());
        engine.volumes.create(&name, labels, false)?;
        eprintln!(" Volume \"{name}\"  Created");
    }
    Ok(())
}

/// Removes the project's own networks; every failure is reported.
pub fn remove_networks(engine: &Engine, project: &Project) -> Vec<String> {
    let mut errors = Vec::new();
    let Ok(nets) = networks(engine) else {
        return errors;
    };
    for key in used_networks(project) {
        if project.networks.get(&key).is_some_and(|d| d.external) {
            continue;
        }
        let name = project.network_name(&key);
        if nets.get(&name).is_err() {
            continue;
        }
        match nets.remove(&name) {
            Ok(()) => eprintln!(" Network {name}  Removed"),
            Err(e) => errors.push(format!("network {name}: {e}")),
        }
    }
    errors
}

pub fn remove_volumes(engine: &Engine, project: &Project) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, def) in &project.volumes {
        if def.external {
            continue;
        }
        let name = project.volume_name(key);
        if engine.volumes.get(&name).is_err() {
            continue;
        }
        match engine.volumes.remove(&name) {
            Ok(()) => eprintln!(" Volume {name}  Removed"),
            Err(e) => errors.push(format!("volume {name}: {e:#}")),
        }
    }
    errors
}
