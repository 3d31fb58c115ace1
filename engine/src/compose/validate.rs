//! Checks across the project: every service, network, volume, secret and
//! config a service refers to is defined, and service dependencies
//! (`depends_on`, `network_mode: service:X`) have no cycle.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{index, join, ComposeError, Result};
use super::model::{ConfigDef, NetworkDef, SecretDef, Service, VolumeDef};

pub(crate) struct Defined<'a> {
    pub(crate) networks: &'a BTreeMap<String, NetworkDef>,
    pub(crate) volumes: &'a BTreeMap<String, VolumeDef>,
    pub(crate) secrets: &'a BTreeMap<String, SecretDef>,
    pub(crate) configs: &'a BTreeMap<String, ConfigDef>,
}

/// The services a service must start after.
pub(crate) fn dependencies(s: &Service) -> Vec<String> {
    let mut deps: Vec<String> = s.depends_on.keys().cloned().collect();
    if let Some(target) = s
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        if !deps.iter().any(|d| d == target) {
            deps.push(target.to_owned());
        }
    }
    deps
}

/// Checks references; optional dependencies on services that do not exist
/// are dropped with a warning, as compose does.
pub(crate) fn references(
    services: &mut [Service],
    defined: &Defined,
    file_of: &dyn Fn(&str) -> String,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let names: BTreeSet<String> = services.iter().map(|s| s.name.clone()).collect();
    for s in services.iter_mut() {
        let file = file_of(&s.name);
        let path = join("services", &s.name);
        let err =
            |field: &str, message: String| ComposeError::field(&file, &join(&path, field), message);
        let mut missing_optional = Vec::new();
        for (dep, d) in &s.depends_on {
            if names.contains(dep) {
                continue;
            }
            if d.required {
                return Err(err(
                    "depends_on",
                    format!("depends on undefined service {dep:?}"),
                ));
            }
            warnings.push(format!(
                "{file}: {path}.depends_on: optional dependency {dep:?} is not defined and is ignored"
            ));
            missing_optional.push(dep.clone());
        }
        for dep in missing_optional {
            s.depends_on.remove(&dep);
        }
        if let Some(mode) = &s.network_mode {
            if let Some(target) = mode.strip_prefix("service:") {
                if !names.contains(target) {
                    return Err(err("network_mode", format!("undefined service {target:?}")));
                }
                if target == s.name {
                    return Err(err(
                        "network_mode",
                        "a service cannot use its own network".to_owned(),
                    ));
                }
            }
        }
        for net in s.networks.keys() {
            if net != "default" && !defined.networks.contains_key(net) {
                return Err(err(
                    &join("networks", net),
                    format!("undefined network {net:?}: declare it under the top-level networks"),
                ));
            }
        }
        for (i, v) in s.volumes.iter().enumerate() {
            if v.kind != "volume" {
                continue;
            }
            if let Some(src) = &v.source {
                if !defined.volumes.contains_key(src) {
                    return Err(err(
                        &index("volumes", i),
                        format!("undefined volume {src:?}: declare it under the top-level volumes"),
                    ));
                }
            }
        }
        for (i, f) in s.secrets.iter().enumerate() {
            if !defined.secrets.contains_key(&f.source) {
                return Err(err(
                    &index("secrets", i),
                    format!(
                        "undefined secret {:?}: declare it under the top-level secrets",
                        f.source
                    ),
                ));
            }
        }
        for (i, f) in s.configs.iter().enumerate() {
            if !defined.configs.contains_key(&f.source) {
                return Err(err(
                    &index("configs", i),
                    format!(
                        "undefined config {:?}: declare it under the top-level configs",
                        f.source
                    ),
                ));
            }
        }
        if let Some(b) = &s.build {
            for (i, f) in b.secrets.iter().enumerate() {
                if !defined.secrets.contains_key(&f.source) {
                    return Err(err(
                        &index("build.secrets", i),
                        format!(
                            "undefined secret {:?}: declare it under the top-level secrets",
                            f.source
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A dependency cycle, as the services on it (first repeated at the end).
pub(crate) fn find_cycle(services: &[Service]) -> Option<Vec<String>> {
    let position: BTreeMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = services
        .iter()
        .map(|s| {
            dependencies(s)
                .iter()
                .filter_map(|d| position.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    // 0: unvisited, 1: on the current path, 2: done.
    let mut state = vec![0u8; services.len()];
    let mut path = Vec::new();
    for start in 0..services.len() {
        if let Some(cycle) = visit(start, &edges, &mut state, &mut path) {
            return Some(cycle.iter().map(|i| services[*i].name.clone()).collect());
        }
    }
    None
}

fn visit(
    n: usize,
    edges: &[Vec<usize>],
    state: &mut [u8],
    path: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    match state[n] {
        2 => return None,
        1 => {
            let start = path.iter().position(|p| *p == n).unwrap_or(0);
            let mut cycle = path[start..].to_vec();
            cycle.push(n);
            return Some(cycle);
        }
        _ => {}
    }
    state[n] = 1;
    path.push(n);
    for d in &edges[n] {
        if let Some(c) = visit(*d, edges, state, path) {
            return Some(c);
        }
    }
    path.pop();
    state[n] = 2;
    None
}

pub(crate) fn no_cycle(services: &[Service], file_of: &dyn Fn(&str) -> String) -> Result<()> {
    match find_cycle(services) {
        Some(cycle) => {
            let first = cycle.first().cloned().unwrap_or_default();
            Err(ComposeError::field(
                &file_of(&first),
                &join(&join("services", &first), "depends_on"),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ))
        }
        None => Ok(()),
    }
}
