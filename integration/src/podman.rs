//! Podman with skiff as its OCI runtime, on private storage: every directory
//! podman, conmon and skiff write to lives in one temp dir, and Drop removes
//! the containers, unmounts what podman's overlay storage left mounted and
//! deletes the dir.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

use crate::cleanup::{kill_cgroups_at, unmount_all};
use crate::client::{self, Client};
use crate::image::{busybox_archive, IMAGE_REF};
use crate::{cgroup_dirs_at, mounts_under};

pub struct Podman {
    pub tmp: tempfile::TempDir,
    /// skiff's --root: the state of the containers podman made.
    pub state: PathBuf,
    calls: PathBuf,
    /// The cgroup (relative to each hierarchy) that holds this podman's
    /// containers and conmons, removed by Drop.
    cgroup_parent: String,
}

impl Podman {
    /// A private podman whose runtime is skiff, with the busybox image loaded.
    pub fn new() -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("skiff-podman-").tempdir()?;
        let dir = tmp.path();
        let state = dir.join("skiff-state");
        let calls = dir.join("skiff-calls.log");
        for d in ["bin", "tmp", "volumes", "networks"] {
            fs::create_dir_all(dir.join(d))?;
        }
        // podman's cleanup process (conmon's exit command) is given --runtime but
        // not --runtime-flag, so skiff's private --root comes from a wrapper that
        // also records each call for the assertions and for debugging.
        client::write_wrapper(&dir.join("bin/skiff"), &calls, Some(&state))?;
        // Passed as CONTAINERS_CONF, which conmon hands on to podman's cleanup
        // process too. This machine's hard limits are below podman's default
        // ulimits. skiff speaks runc's JSON logs, so podman asks for them as it
        // does of runc.
        fs::write(
            dir.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
log_driver = "k8s-file"

[network]
network_config_dir = "{dir}/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
tmp_dir = "{dir}/tmp"
static_dir = "{dir}/storage/libpod"
volume_path = "{dir}/volumes"
image_copy_tmp_dir = "{dir}/tmp"
runtime_supports_json = ["skiff"]
"#,
                dir = dir.display()
            ),
        )?;
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{dir}/storage\"\nrunroot = \"{dir}/runroot\"\n",
                dir = dir.display()
            ),
        )?;
        let tag = dir.file_name().unwrap_or_default().to_string_lossy();
        let cgroup_parent = format!("/{tag}");
        let p = Self {
            tmp,
            state,
            calls,
            cgroup_parent,
        };
        p.ok(["load", "-q", "-i"]
            .map(OsStr::new)
            .into_iter()
            .chain([busybox_archive()?.as_os_str()]))
            .context("podman load")?;
        Ok(p)
    }

    /// Ids of the containers in skiff's state root.
    pub fn skiff_containers(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.state) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(':'))
            .collect()
    }

    pub fn image(&self) -> &'static str {
        IMAGE_REF
    }

    /// `podman run --cgroup-parent PARENT ARGS...` (any exit code): the
    /// container and its conmon go in this podman's own cgroup.
    pub fn run_ctr(&self, args: &[&str]) -> Result<Output> {
        let mut all = vec!["run", "--cgroup-parent", &self.cgroup_parent];
        all.extend_from_slice(args);
        self.run(all)
    }

    /// The cgroup v1 directory of container `id` in `controller`'s hierarchy.
    pub fn container_cgroup(&self, controller: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroup_parent.trim_start_matches('/'))
            .join(format!("libpod-{id}"))
    }

    /// What this podman's containers left behind: skiff state, container
    /// cgroups (libpod-ID) and mounts of container root filesystems.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .skiff_containers()
            .into_iter()
            .map(|id| format!("skiff state of {id}"))
            .collect();
        for dir in cgroup_dirs_at(&self.cgroup_parent) {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with("libpod-") {
                    left.push(e.path().display().to_string());
                }
            }
        }
        let merged = self.tmp.path().join("storage/overlay");
        left.extend(
            mounts_under(&merged)
                .into_iter()
                .filter(|m| m.ends_with("/merged")),
        );
        left
    }

    /// Fails when `leftovers` finds anything.
    pub fn assert_clean(&self) -> Result<()> {
        let left = self.leftovers();
        if !left.is_empty() {
            bail!("podman containers left behind: {left:?}");
        }
        Ok(())
    }
}

impl Client for Podman {
    const PROGRAM: &'static str = "podman";
    const CALLER: &'static str = "podman";

    /// `podman --root ... --runtime SKIFF ARGS...` as a Command.
    fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let dir = self.tmp.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .arg("--root")
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("runroot"))
            .arg("--storage-driver")
            .arg("overlay")
            .arg("--runtime")
            .arg(dir.join("bin/skiff"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn calls_log(&self) -> &Path {
        &self.calls
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(["rm", "--all", "--force", "--time", "0"]);
        unmount_all(self.tmp.path());
        kill_cgroups_at(&self.cgroup_parent);
    }
}
