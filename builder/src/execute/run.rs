//! A RUN step: the command as an OCI bundle whose rootfs is the step's overlay, run with
//! `RUNTIME --root STATE run --bundle BUNDLE ID`. The stage's env, user, workdir and shell
//! apply; the network is a fresh empty namespace unless host networking was asked for.
//! The command's stdout and stderr stream to ours.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use skiff_specs::runtime_config::DEFAULT_PATH;
use skiff_specs::runtime_config::{Process, ProcessUser};
use skiff_specs::runtime_spec::{container_spec, Network, SpecOptions};
use skiff_specs::user::resolve_user;

use crate::error::{BuildError, Result};
use crate::options::NetworkMode;
use crate::progress::Step;

/// What one RUN executes.
#[derive(Debug, Clone)]
pub struct RunJob {
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// The USER spec (empty: root).
    pub user: String,
    pub cwd: String,
    pub network: NetworkMode,
    /// Files bind-mounted read-only into the container: (content, container path).
    pub files: Vec<(String, String)>,
    /// Runtime-spec mounts from `RUN --mount`.
    pub mounts: Vec<Value>,
}

impl RunJob {
    /// Runs in `rootfs` with `runtime`; `dir` holds the bundle and the runtime's state.
    /// Output is shown as `progress` (the step) says.
    pub fn run(
        &self,
        runtime: &Path,
        rootfs: &Path,
        dir: &Path,
        id: &str,
        step: &str,
        progress: &Step,
    ) -> Result<()> {
        let user = resolve_user(rootfs, &self.user)
            .map_err(|e| BuildError::step(step, format!("USER {}: {e}", self.user)))?;
        // The working directory exists before the command starts, as with docker build.
        let cwd_host = super::resolve::resolve_in(rootfs, &self.cwd, true)
            .map_err(|e| BuildError::step(step, format!("WORKDIR {}: {e}", self.cwd)))?;
        fs::create_dir_all(&cwd_host).map_err(BuildError::io(&cwd_host))?;
        let bundle = dir.join("bundle");
        let state = dir.join("state");
        for d in [&bundle, &state] {
            fs::create_dir_all(d).map_err(BuildError::io(d))?;
        }
        let mut mounts = self.mounts.clone();
        for (i, (content, target)) in self.files.iter().enumerate() {
            let host = bundle.join(format!("file-{i}"));
            fs::write(&host, content).map_err(BuildError::io(&host))?;
            set_mode(&host, 0o755)?;
            mounts.push(
                json!({"destination": target, "type": "bind", "source": host,
                               "options": ["rbind", "ro"]}),
            );
        }
        let mut env = self.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        let process = Process {
            user: ProcessUser {
                uid: user.uid,
                gid: user.gid,
                additional_gids: user.additional_gids,
            },
            args: self.args.clone(),
            env,
            cwd: self.cwd.clone(),
        };
        // BuildKit's RUN containers: the default profile (seccomp included), its hostname.
        let options = SpecOptions {
            hostname: "buildkitsandbox",
            network: match self.network {
                NetworkMode::None => Network::Isolated,
                NetworkMode::Host => Network::Host,
            },
            ..SpecOptions::default()
        };
        let mut spec = container_spec(&process, rootfs, &options);
        if let Some(all) = spec["mounts"].as_array_mut() {
            all.extend(mounts);
        }
        let config = bundle.join("config.json");
        fs::write(&config, spec.to_string()).map_err(BuildError::io(&config))?;
        let mut output = progress.command_output().map_err(BuildError::io(&bundle))?;
        let mut command = Command::new(runtime);
        command
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(id)
            .stdin(Stdio::null());
        command.stdout(std::mem::replace(&mut output.stdout, Stdio::null()));
        command.stderr(std::mem::replace(&mut output.stderr, Stdio::null()));
        let spawned = command.spawn();
        // The Command holds the write ends of the relay's pipe; it must close for EOF.
        drop(command);
        let status = spawned.and_then(|mut child| child.wait());
        output.finish();
        let status = status.map_err(|e| {
            BuildError::step(step, format!("starting runtime {}: {e}", runtime.display()))
        })?;
        if !status.success() {
            // `run` deletes the container when it exits; a forced delete covers a runtime
            // that failed half-way.
            let _ = Command::new(runtime)
                .arg("--root")
                .arg(&state)
                .args(["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
            let code = status
                .code()
                .map_or_else(|| format!("{status}"), |c| format!("exit code {c}"));
            return Err(BuildError::step(
                step,
                format!("the command failed ({code}): {}", self.args.join(" ")),
            ));
        }
        Ok(())
    }
}

fn set_mode(path: &PathBuf, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(BuildError::io(path))
}
