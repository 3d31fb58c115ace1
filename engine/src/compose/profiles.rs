//! Profiles: a service with `profiles` is enabled only when one of them is
//! active (`--profile`, `COMPOSE_PROFILES`, `*` for all). Naming a service
//! on the command line makes its profiles active, as compose does; an
//! enabled service that requires a disabled one is an error naming the
//! profiles that would enable it.

use std::collections::BTreeSet;

use super::error::{join, ComposeError, Result};
use super::model::Service;

/// The active profiles: the given ones plus those of the named services.
pub(crate) fn active(
    profiles: &[String],
    named: &[String],
    services: &[Service],
) -> Result<BTreeSet<String>> {
    let mut active: BTreeSet<String> = profiles.iter().cloned().collect();
    for name in named {
        let s = services
            .iter()
            .find(|s| s.name == *name)
            .ok_or_else(|| ComposeError::Project(format!("no such service: {name}")))?;
        active.extend(s.profiles.iter().cloned());
    }
    Ok(active)
}

pub(crate) fn enabled(service: &Service, active: &BTreeSet<String>) -> bool {
    service.profiles.is_empty()
        || active.contains("*")
        || service.profiles.iter().any(|p| active.contains(p))
}

/// Splits services into enabled and disabled ones; drops optional
/// dependencies on disabled services (with a warning) and rejects required ones.
pub(crate) fn select(
    services: Vec<Service>,
    active: &BTreeSet<String>,
    file_of: &dyn Fn(&str) -> String,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Service>, Vec<String>)> {
    let (mut on, off): (Vec<Service>, Vec<Service>) =
        services.into_iter().partition(|s| enabled(s, active));
    for s in &mut on {
        let mut dropped = Vec::new();
        for (dep, d) in &s.depends_on {
            let Some(disabled) = off.iter().find(|o| o.name == *dep) else {
                continue;
            };
            if d.required {
                return Err(ComposeError::field(
                    &file_of(&s.name),
                    &join(&join("services", &s.name), "depends_on"),
                    format!(
                        "service {dep:?} is required but disabled by its profiles; enable it with --profile {}",
                        disabled.profiles.join(" or --profile ")
                    ),
                ));
            }
            warnings.push(format!(
                "service {:?}: optional dependency {dep:?} is disabled by its profiles and is ignored",
                s.name
            ));
            dropped.push(dep.clone());
        }
        for dep in dropped {
            s.depends_on.remove(&dep);
        }
        if let Some(target) = s
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            if let Some(disabled) = off.iter().find(|o| o.name == target) {
                return Err(ComposeError::field(
                    &file_of(&s.name),
                    &join(&join("services", &s.name), "network_mode"),
                    format!(
                        "service {target:?} is disabled by its profiles; enable it with --profile {}",
                        disabled.profiles.join(" or --profile ")
                    ),
                ));
            }
        }
    }
    Ok((on, off.into_iter().map(|s| s.name).collect()))
}
