//! Finding containers under --root and describing them the way runc does.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

/// skiff's own notes about a container, beside libcontainer's state.json.
pub const NOTES_FILE: &str = "skiff.json";

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Notes {
    pub rootfs: PathBuf,
    /// Without a mount namespace of its own, the container's mounts are made
    /// in skiff's namespace below the rootfs: the ids of the mounts that were
    /// there before create, so delete detaches only the container's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts_before: Option<BTreeSet<u64>>,
}

/// Container ids are names, never paths: the same rule as runc.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'+' | b'-' | b'.'));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.' only");
    }
    Ok(())
}

pub fn ensure_root(root: &Path) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("cannot create state directory {}", root.display()))
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Loads a container, with runc's message when it is not there.
pub fn load(root: &Path, id: &str) -> Result<Container> {
    validate_id(id)?;
    let d = dir(root, id);
    if !d.join("state.json").exists() {
        bail!("container {id:?} does not exist");
    }
    Container::load(d).with_context(|| format!("cannot load state of container {id:?}"))
}

pub fn status_name(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

pub fn read_notes(container_dir: &Path) -> Notes {
    fs::read(container_dir.join(NOTES_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn write_notes(container_dir: &Path, notes: &Notes) -> Result<()> {
    let tmp = container_dir.join(".skiff.json.tmp");
    fs::write(&tmp, serde_json::to_vec(notes)?)?;
    fs::rename(&tmp, container_dir.join(NOTES_FILE))?;
    Ok(())
}

/// The OCI state as runc prints it (`pid` is 0 once the container stopped).
pub fn oci_state(c: &Container) -> serde_json::Value {
    let status = c.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    let notes = read_notes(&c.root);
    let created = c
        .created()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    let owner = c
        .creator()
        .map(|o| o.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut v = serde_json::json!({
        "ociVersion": "1.2.0",
        "id": c.id(),
        "pid": pid,
        "status": status_name(status),
        "bundle": c.bundle(),
        "rootfs": notes.rootfs,
        "created": created,
        "owner": owner,
    });
    if let Some(a) = c.state.annotations.as_ref().filter(|a| !a.is_empty()) {
        v["annotations"] = serde_json::json!(a);
    }
    v
}

/// Runs `hooks` one by one; a failing one is a warning and the rest still
/// run. The runtime spec asks this of poststart and poststop hooks, while
/// libcontainer stops at the first failure.
pub fn run_hooks_warning(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &libcontainer::container::State,
) {
    for hook in hooks.into_iter().flatten() {
        let one = vec![hook.clone()];
        if let Err(e) = libcontainer::hooks::run_hooks(Some(&one), Some(state), None, None, None) {
            tracing::warn!(target: "skiff", "{kind} hook {} failed: {e}", hook.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_names() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a:b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
