//! The build's scratch directory (layer extractions, overlay snapshots, RUN bundles) under
//! the temp dir, named after our pid. A build killed with SIGKILL cannot clean up, so each
//! build first sweeps the directories of builders that are gone: their RUN containers are
//! force-deleted, their overlay mounts detached, the directories removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{umount2, MntFlags};
use tempfile::TempDir;

use crate::error::{BuildError, Result};

const PREFIX: &str = "skiff-build-";

/// Sweeps stale work dirs, then creates ours.
pub fn create(runtime: &Path) -> Result<TempDir> {
    let tmp = std::env::temp_dir();
    sweep_stale(&tmp, runtime);
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir_in(&tmp)
        .map_err(BuildError::io(&tmp))
}

/// The pid in a work dir's name, if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

fn sweep_stale(tmp: &Path, runtime: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        eprintln!(
            "skiff-build: removing the work dir of a builder that is gone: {}",
            dir.display()
        );
        delete_containers(&dir, runtime);
        unmount_below(&dir);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Force-deletes the RUN containers whose state lives in `dir/*/state/`.
fn delete_containers(dir: &Path, runtime: &Path) {
    let Ok(steps) = fs::read_dir(dir) else {
        return;
    };
    for step in steps.flatten() {
        let state: PathBuf = step.path().join("state");
        let Ok(ids) = fs::read_dir(&state) else {
            continue;
        };
        for id in ids.flatten() {
            let _ = Command::new(runtime)
                .arg("--root")
                .arg(&state)
                .args(["delete", "--force"])
                .arg(id.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Detaches every mount at or below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = umount2(m.as_str(), MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn pids() {
        assert_eq!(owner_pid("skiff-build-123-AbC"), Some(123));
        assert_eq!(owner_pid("skiff-build-test-AbC"), None);
        assert_eq!(owner_pid("other-1-x"), None);
    }
}
