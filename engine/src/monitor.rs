//! The engine's side of a container's monitor: `containerd-shim-skiff-v2`,
//! started and spoken to exactly as containerd does (the `start` action,
//! then the task API over ttrpc), with no containerd behind it. The shim
//! outlives skiffctl; containers that share a monitor group share one shim.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use containerd_shim_protos::api::*;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use containerd_shim_protos::TaskClient;

/// The namespace the monitors are started in (a name only: no containerd).
pub const NAMESPACE: &str = "skiff";

/// A program beside skiffctl (the shim, the runtime), else on PATH.
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// How to reach the monitors and which runtime they drive.
#[derive(Debug, Clone)]
pub struct MonitorSetup {
    pub shim: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    /// The address the shims hash their socket names from.
    pub address: PathBuf,
}

/// A connection to the monitor of one container.
pub struct Monitor {
    client: TaskClient,
    pub id: String,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("id", &self.id).finish()
    }
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(Duration::from_secs(60).as_nanos() as i64)
}

/// A call with no deadline (Wait returns when the process exits).
fn ctx_forever() -> ttrpc::context::Context {
    ttrpc::context::Context::default()
}

fn rpc_error(what: &str, e: ttrpc::Error) -> anyhow::Error {
    match e {
        ttrpc::Error::RpcStatus(s) => anyhow!("{what}: {}", s.message),
        other => anyhow!("{what}: {other}"),
    }
}

/// What the container's init gets as stdio.
#[derive(Debug, Clone, Default)]
pub struct Stdio3 {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl MonitorSetup {
    /// Where the runtime keeps its containers' state: the shim puts them
    /// below the root it is given, in a directory named after the namespace.
    pub fn runtime_state_root(&self) -> PathBuf {
        self.runtime_root.join(NAMESPACE)
    }

    /// Starts (or finds) the monitor for container `id` whose bundle is
    /// `bundle`, and connects to it.
    pub fn start(&self, bundle: &Path, id: &str) -> Result<Monitor> {
        let out = Command::new(&self.shim)
            .args(["-namespace", NAMESPACE, "-address"])
            .arg(&self.address)
            .args(["-publish-binary", "/bin/true", "-id", id, "start"])
            .current_dir(bundle)
            .env_remove("TTRPC_ADDRESS")
            .env_remove("MAX_SHIM_VERSION")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.shim.display()))?;
        if !out.status.success() {
            bail!(
                "cannot start the container's monitor: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Monitor::connect(&address, id)
    }

    /// The monitor of a started container, from the address it left in the bundle.
    pub fn connect(&self, bundle: &Path, id: &str) -> Result<Monitor> {
        let address = std::fs::read_to_string(bundle.join("address"))
            .with_context(|| format!("container {id} has no monitor"))?;
        Monitor::connect(address.trim(), id)
    }

    /// runc's options: our runtime binary and its state root.
    fn options(&self) -> Any {
        let opts = RuncOptions {
            binary_name: self.runtime.display().to_string(),
            root: self.runtime_root.display().to_string(),
            ..Default::default()
        };
        Any {
            type_url: "containerd.runc.v1.Options".to_owned(),
            value: opts.write_to_bytes().unwrap_or_default(),
            ..Default::default()
        }
    }
}

impl Monitor {
    fn connect(address: &str, id: &str) -> Result<Monitor> {
        let client = ttrpc::Client::connect(address)
            .map_err(|e| anyhow!("cannot reach the monitor at {address}: {e}"))?;
        Ok(Monitor {
            client: TaskClient::new(client),
            id: id.to_owned(),
        })
    }

    /// Creates the task (the runtime's create) and returns the init's pid.
    pub fn create(&self, setup: &MonitorSetup, bundle: &Path, stdio: &Stdio3) -> Result<u32> {
        let req = CreateTaskRequest {
            id: self.id.clone(),
            bundle: bundle.display().to_string(),
            terminal: stdio.terminal,
            stdin: stdio.stdin.clone(),
            stdout: stdio.stdout.clone(),
            stderr: stdio.stderr.clone(),
            options: MessageField::some(setup.options()),
            ..Default::default()
        };
        let resp = self
            .client
            .create(ctx(), &req)
            .map_err(|e| rpc_error("cannot create the container", e))?;
        Ok(resp.pid)
    }

    pub fn start(&self, exec_id: &str) -> Result<u32> {
        let req = StartRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            ..Default::default()
        };
        let resp = self
            .client
            .start(ctx(), &req)
            .map_err(|e| rpc_error("cannot start", e))?;
        Ok(resp.pid)
    }

    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let req = KillRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            signal,
            all,
            ..Default::default()
        };
        self.client
            .kill(ctx(), &req)
            .map_err(|e| rpc_error("cannot signal", e))?;
        Ok(())
    }

    /// Waits for the process to exit; returns its exit status.
    pub fn wait(&self, exec_id: &str) -> Result<u32> {
        let req = WaitRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            ..Default::default()
        };
        let resp = self
            .client
            .wait(ctx_forever(), &req)
            .map_err(|e| rpc_error("wait", e))?;
        Ok(resp.exit_status)
    }

    pub fn delete(&self, exec_id: &str) -> Result<u32> {
        let req = DeleteRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            ..Default::default()
        };
        let resp = self
            .client
            .delete(ctx(), &req)
            .map_err(|e| rpc_error("cannot delete", e))?;
        Ok(resp.exit_status)
    }

    pub fn pause(&self) -> Result<()> {
        let req = PauseRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        self.client
            .pause(ctx(), &req)
            .map_err(|e| rpc_error("cannot pause", e))?;
        Ok(())
    }

    pub fn resume(&self) -> Result<()> {
        let req = ResumeRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        self.client
            .resume(ctx(), &req)
            .map_err(|e| rpc_error("cannot unpause", e))?;
        Ok(())
    }

    /// Adds a process (`exec`) with the runtime-spec `process` JSON.
    pub fn exec(&self, exec_id: &str, process: &serde_json::Value, stdio: &Stdio3) -> Result<()> {
        let spec = Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".to_owned(),
            value: serde_json::to_vec(process)?,
            ..Default::default()
        };
        let req = ExecProcessRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            terminal: stdio.terminal,
            stdin: stdio.stdin.clone(),
            stdout: stdio.stdout.clone(),
            stderr: stdio.stderr.clone(),
            spec: MessageField::some(spec),
            ..Default::default()
        };
        self.client
            .exec(ctx(), &req)
            .map_err(|e| rpc_error("cannot exec", e))?;
        Ok(())
    }

    pub fn resize(&self, exec_id: &str, width: u32, height: u32) -> Result<()> {
        let req = ResizePtyRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            width,
            height,
            ..Default::default()
        };
        self.client
            .resize_pty(ctx(), &req)
            .map_err(|e| rpc_error("cannot resize the terminal", e))?;
        Ok(())
    }

    pub fn close_stdin(&self, exec_id: &str) -> Result<()> {
        let req = CloseIORequest {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            stdin: true,
            ..Default::default()
        };
        self.client
            .close_io(ctx(), &req)
            .map_err(|e| rpc_error("cannot close stdin", e))?;
        Ok(())
    }

    /// The container's processes (host pids).
    pub fn pids(&self) -> Result<Vec<u32>> {
        let req = PidsRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let resp = self
            .client
            .pids(ctx(), &req)
            .map_err(|e| rpc_error("cannot list processes", e))?;
        Ok(resp.processes.iter().map(|p| p.pid).collect())
    }
}
