//! A private skiffctl engine for a test: its own root (images, containers,
//! volumes, networks, run dir) in a temp dir, the busybox image loaded into
//! its store. Drop removes every container and network it made, then kills,
//! unmounts and deletes whatever is still left, so a failed test leaves
//! nothing behind.

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::cleanup::unmount_all;
use crate::image::{busybox_archive, IMAGE_REF};
use crate::{bin, mounts_under, output_within, pid_alive};

pub const SKIFFCTL: &str = "skiffctl";

pub struct EngineEnv {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
}

impl EngineEnv {
    /// A fresh engine root with the busybox image (`busybox()`) in its store.
    pub fn new() -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("skiff-eng-").tempdir()?;
        let root = tmp.path().join("root");
        fs::create_dir_all(&root)?;
        let env = Self { tmp, root };
        let archive = busybox_archive()?;
        let out = Command::new(bin("skiff-build"))
            .args(["image", "load", "--store"])
            .arg(env.root.join("store"))
            .arg("--input")
            .arg(&archive)
            .output()?;
        if !out.status.success() {
            bail!("loading busybox: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(env)
    }

    /// The busybox image's name in the store.
    pub fn busybox(&self) -> &'static str {
        IMAGE_REF
    }

    /// A unique name for this test's containers, networks and volumes.
    pub fn name(&self, what: &str) -> String {
        let tag = self
            .tmp
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        format!(
            "{what}-{}",
            tag.trim_start_matches("skiff-eng-").to_ascii_lowercase()
        )
    }

    /// `skiffctl --root ROOT ARGS`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(bin(SKIFFCTL));
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs skiffctl (60 s at most) and returns its output, any exit code.
    pub fn run<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output_within(self.cmd(args), Duration::from_secs(60))
    }

    /// stdout of a skiffctl that must succeed.
    pub fn ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args)?;
        if !out.status.success() {
            bail!(
                "skiffctl {:?} failed ({}): {}",
                args,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// stderr of a skiffctl that must fail.
    pub fn fails<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args)?;
        if out.status.success() {
            bail!(
                "skiffctl {:?} succeeded, should have failed: {}",
                args,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Builds `dockerfile` (with `files` beside it) into the store as `tag`.
    pub fn build(&self, tag: &str, dockerfile: &str, files: &[(&str, &str)]) -> Result<()> {
        let ctx = self
            .tmp
            .path()
            .join(format!("ctx-{}", tag.replace([':', '/'], "_")));
        fs::create_dir_all(&ctx)?;
        fs::write(ctx.join("Dockerfile"), dockerfile)?;
        for (name, text) in files {
            let p = ctx.join(name);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(p, text)?;
        }
        let out = Command::new(bin("skiff-build"))
            .arg("--store")
            .arg(self.root.join("store"))
            .args(["--progress", "plain", "-t", tag])
            .arg(&ctx)
            .output()?;
        if !out.status.success() {
            bail!("building {tag}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// A docker-inspect field of a container: `{{.State.Status}}`.
    pub fn inspect(&self, container: &str, template: &str) -> Result<String> {
        Ok(self
            .ok(["inspect", "-f", template, container])?
            .trim()
            .to_owned())
    }

    /// Polls `inspect` until `template` gives `want` (up to `secs`).
    pub fn wait_for(&self, container: &str, template: &str, want: &str, secs: u64) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.inspect(container, template)?;
            if got == want {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("{container}: {template} is {got:?} after {secs} s, expected {want:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the engine left: mounts and netns files under the root, live
    /// monitors serving it, container state.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = mounts_under(self.tmp.path());
        if let Ok(entries) = fs::read_dir(self.root.join("run/netns")) {
            left.extend(
                entries
                    .flatten()
                    .map(|e| format!("netns {}", e.path().display())),
            );
        }
        left.extend(
            self.monitors()
                .iter()
                .map(|p| format!("monitor process {p}")),
        );
        for dir in ["engine/containers", "engine/containers/.removing"] {
            if let Ok(entries) = fs::read_dir(self.root.join(dir)) {
                left.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_name() != ".removing")
                        .map(|e| format!("container {}", e.path().display())),
                );
            }
        }
        left
    }

    pub fn assert_clean(&self) -> Result<()> {
        // `run --rm` finishes a removal (its network teardown) in the
        // background: give it time, then everything must be gone.
        let removing = self.root.join("engine/containers/.removing");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while fs::read_dir(&removing)
            .map(|d| d.count() > 0)
            .unwrap_or(false)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.leftovers();
        if !left.is_empty() {
            bail!("the engine left: {left:?}");
        }
        Ok(())
    }

    /// Pids of shims whose working directory (a bundle) is under our root.
    pub fn monitors(&self) -> Vec<i32> {
        let Ok(procs) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains("containerd-shim-skiff-v2")
                    && cwd.starts_with(&self.root)
            })
            .collect()
    }
}

impl Drop for EngineEnv {
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .run(["ps", "-aq", "--no-trunc"])
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            let _ = self.run(["rm", "-f", "-v", id]);
        }
        if let Ok(out) = self.run(["network", "ls", "-q"]) {
            for n in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.run(["network", "rm", n]);
            }
        }
        for pid in self.monitors() {
            if pid_alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for id in &ids {
            crate::cleanup::kill_cgroups_at(&format!("/skiffctl/{id}"));
        }
        if let Ok(entries) = fs::read_dir(self.root.join("run/netns")) {
            for e in entries.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        unmount_all(self.tmp.path());
        // The default network's subnet claim (host-wide, under /run/skiff-net)
        // goes with this engine's root.
        remove_subnet_claims_under(&self.root);
    }
}

/// Removes the host-wide subnet claims (/run/skiff-net) of the networks of
/// an engine root that is going away (a test's).
pub fn remove_subnet_claims_under(root: &std::path::Path) {
    let Ok(claims) = fs::read_dir("/run/skiff-net/subnets") else {
        return;
    };
    for c in claims.flatten() {
        let owner: Option<serde_json::Value> = fs::read(c.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let ours = owner
            .as_ref()
            .and_then(|o| o["state_dir"].as_str())
            .is_some_and(|d| std::path::Path::new(d).starts_with(root));
        if ours {
            let _ = fs::remove_file(c.path());
        }
    }
}
