//! The shim as a container monitor, driven as `skiffctl` drives it and with
//! no containerd: `SHIM start` in a bundle with a `monitor.json`, then the
//! task API over ttrpc (the small client of `shim.rs`). A `MonitorEnv` is a
//! test's world: a busybox rootfs its containers share, a runtime state
//! root, and the shims it started. Dropping it kills the shims, force-
//! deletes the containers and removes their cgroups, also after a failure.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use skiff_specs::jsonlog::{self, Entry};
use skiff_specs::monitor::{LogConfig, MonitorConfig, MonitorState, GROUP_ANNOTATION};

use crate::shim::{bytes_field, call, fields, varint, SHIM};
use crate::{bin, pid_alive, skiff_bin, Env, Guard};

/// The namespace the engine starts its monitors in (a name only).
pub const NAMESPACE: &str = "skiff";
const TASK: &str = "containerd.task.v2.Task";
/// How long a test waits for what a container or its monitor must do.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct MonitorEnv {
    shims: Mutex<Vec<(i32, PathBuf)>>,
    // Dropped in this order: cgroups and mounts, then the containers and
    // the temp dir.
    _guard: Guard,
    pub env: Env,
    /// The "containerd address" the shims hash their socket names from.
    address: PathBuf,
}

/// A container's bundle and monitor config.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub id: String,
    pub bundle: PathBuf,
    pub config: MonitorConfig,
}

impl MonitorEnv {
    pub fn new() -> Result<Self> {
        let env = Env::new(&["true"])?;
        Ok(Self {
            shims: Mutex::new(Vec::new()),
            _guard: env.guard(),
            address: env.tmp.path().join("engine.sock"),
            env,
        })
    }

    /// A container `name` running `args` on the shared rootfs, with a
    /// json-file log, its state file and stop marker in its directory;
    /// `edit` may change the spec and the monitor config.
    pub fn container(
        &self,
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut Value, &mut MonitorConfig),
    ) -> Result<Ctr> {
        let id = self.env.uid(name);
        let dir = self.env.tmp.path().join(name);
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle)?;
        let mut spec = crate::default_spec(args);
        spec["root"]["path"] = json!(self.env.bundle.join("rootfs"));
        spec["linux"]["cgroupsPath"] = json!(self.env.cgroups_path(name));
        let mut config = MonitorConfig {
            state: dir.join("state.json"),
            log: Some(LogConfig {
                path: dir.join(format!("{id}-json.log")),
                max_size: 0,
                max_file: 1,
            }),
            stop_marker: dir.join("stopping"),
            ..Default::default()
        };
        edit(&mut spec, &mut config);
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec)?,
        )?;
        config.write(&bundle)?;
        self.env.track(&id);
        Ok(Ctr { id, bundle, config })
    }

    /// `SHIM start` in the container's bundle, as the engine runs it, and a
    /// connection to the shim it names (a new one, or its group's).
    pub fn start_shim(&self, c: &Ctr) -> Result<Shim> {
        let out = std::process::Command::new(bin(SHIM))
            .args(["-namespace", NAMESPACE, "-address"])
            .arg(&self.address)
            .args(["-publish-binary", "/bin/true", "-id", &c.id, "start"])
            .current_dir(&c.bundle)
            .env_remove("TTRPC_ADDRESS")
            .env_remove("MAX_SHIM_VERSION")
            .stdin(std::process::Stdio::null())
            .output()
            .context("cannot run the shim's start")?;
        if !out.status.success() {
            bail!(
                "shim start: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let socket = PathBuf::from(address.trim_start_matches("unix://"));
        let conn = UnixStream::connect(&socket)
            .with_context(|| format!("cannot connect to the shim at {address}"))?;
        conn.set_read_timeout(Some(PATIENCE))?;
        let mut shim = Shim {
            pid: 0,
            socket: socket.clone(),
            conn,
            next: 1,
        };
        let mut req = Vec::new();
        bytes_field(1, c.id.as_bytes(), &mut req);
        let reply = shim.ok("Connect", &req)?;
        let pid = get_varint(&reply, 1).context("Connect returned no shim pid")?;
        shim.pid = i32::try_from(pid)?;
        if let Ok(mut v) = self.shims.lock() {
            if !v.iter().any(|(p, _)| *p == shim.pid) {
                v.push((shim.pid, socket));
            }
        }
        Ok(shim)
    }

    /// runc's options in an Any: skiff with this test's state root.
    fn options(&self) -> Vec<u8> {
        let mut options = Vec::new();
        bytes_field(6, skiff_bin().as_os_str().as_encoded_bytes(), &mut options);
        bytes_field(
            7,
            self.env.root.as_os_str().as_encoded_bytes(),
            &mut options,
        );
        let mut any = Vec::new();
        bytes_field(1, b"containerd.runc.v1.Options", &mut any);
        bytes_field(2, &options, &mut any);
        any
    }

    /// Create then Start: the init's pid.
    pub fn run(&self, shim: &mut Shim, c: &Ctr) -> Result<u32> {
        self.create(shim, c, "", false)?;
        shim.start(&c.id)
    }

    pub fn create(&self, shim: &mut Shim, c: &Ctr, stdin: &str, terminal: bool) -> Result<u32> {
        let mut req = Vec::new();
        bytes_field(1, c.id.as_bytes(), &mut req);
        bytes_field(2, c.bundle.as_os_str().as_encoded_bytes(), &mut req);
        if terminal {
            varint_field(4, 1, &mut req);
        }
        if !stdin.is_empty() {
            bytes_field(5, stdin.as_bytes(), &mut req);
        }
        bytes_field(10, &self.options(), &mut req);
        let reply = shim.ok("Create", &req)?;
        u32::try_from(get_varint(&reply, 1).unwrap_or(0)).map_err(Into::into)
    }
}

impl Drop for MonitorEnv {
    fn drop(&mut self) {
        let shims = self.shims.lock().map(|v| v.clone()).unwrap_or_default();
        for (pid, socket) in shims {
            if pid_alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// A connection to a shim.
pub struct Shim {
    pub pid: i32,
    pub socket: PathBuf,
    conn: UnixStream,
    next: u32,
}

impl Shim {
    /// One task API call: Ok(payload) or Err((code, message)).
    pub fn call(
        &mut self,
        method: &str,
        payload: &[u8],
    ) -> Result<std::result::Result<Vec<u8>, (u64, String)>> {
        let stream = self.next;
        self.next += 2;
        call(&mut self.conn, stream, TASK, method, payload)
    }

    /// A call that must succeed.
    pub fn ok(&mut self, method: &str, payload: &[u8]) -> Result<Vec<u8>> {
        self.call(method, payload)?
            .map_err(|(code, msg)| anyhow!("{method}: code {code}: {msg}"))
    }

    pub fn start(&mut self, id: &str) -> Result<u32> {
        let reply = self.ok("Start", &id_request(id))?;
        u32::try_from(get_varint(&reply, 1).unwrap_or(0)).map_err(Into::into)
    }

    pub fn kill(
        &mut self,
        id: &str,
        signal: u32,
    ) -> Result<std::result::Result<(), (u64, String)>> {
        let mut req = id_request(id);
        varint_field(3, u64::from(signal), &mut req);
        Ok(self.call("Kill", &req)?.map(|_| ()))
    }

    pub fn delete(&mut self, id: &str) -> Result<std::result::Result<Vec<u8>, (u64, String)>> {
        self.call("Delete", &id_request(id))
    }

    pub fn pause(&mut self, id: &str) -> Result<()> {
        self.ok("Pause", &id_request(id)).map(|_| ())
    }

    pub fn resume(&mut self, id: &str) -> Result<()> {
        self.ok("Resume", &id_request(id)).map(|_| ())
    }

    /// CloseIO of the init's stdin.
    pub fn close_stdin(&mut self, id: &str) -> Result<()> {
        let mut req = id_request(id);
        varint_field(3, 1, &mut req);
        self.ok("CloseIO", &req).map(|_| ())
    }

    /// Exec, Start, Wait and Delete of `args` in the container (no stdio):
    /// its exit status.
    pub fn exec(&mut self, id: &str, exec_id: &str, args: &[&str]) -> Result<u64> {
        let process = json!({
            "args": args,
            "cwd": "/",
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "user": {"uid": 0, "gid": 0},
        });
        let mut spec = Vec::new();
        bytes_field(
            1,
            b"types.containerd.io/opencontainers/runtime-spec/1/Process",
            &mut spec,
        );
        bytes_field(2, &serde_json::to_vec(&process)?, &mut spec);
        let mut req = id_request(id);
        bytes_field(2, exec_id.as_bytes(), &mut req);
        bytes_field(7, &spec, &mut req);
        self.ok("Exec", &req)?;
        let mut req = id_request(id);
        bytes_field(2, exec_id.as_bytes(), &mut req);
        self.ok("Start", &req)?;
        let reply = self.ok("Wait", &req)?;
        self.ok("Delete", &req)?;
        Ok(get_varint(&reply, 1).unwrap_or(0))
    }

    /// The container's processes (host pids).
    pub fn pids(&mut self, id: &str) -> Result<Vec<u64>> {
        let reply = self.ok("Pids", &id_request(id))?;
        let mut pids = Vec::new();
        for (f, info, _) in fields(&reply)? {
            if f == 1 {
                pids.push(get_varint(&info, 1).unwrap_or(0));
            }
        }
        Ok(pids)
    }

    /// Waits for the shim process to end.
    pub fn wait_gone(&self) -> Result<()> {
        crate::wait_until(PATIENCE.as_secs(), "the shim to exit", || {
            !pid_alive(self.pid)
        })
    }
}

fn id_request(id: &str) -> Vec<u8> {
    let mut req = Vec::new();
    bytes_field(1, id.as_bytes(), &mut req);
    req
}

fn varint_field(field: u64, v: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(v, out);
}

fn get_varint(msg: &[u8], field: u64) -> Option<u64> {
    fields(msg)
        .ok()?
        .into_iter()
        .find(|f| f.0 == field)
        .map(|f| f.2)
}

impl Ctr {
    pub fn state(&self) -> Result<MonitorState> {
        MonitorState::read(&self.config.state)
            .with_context(|| format!("reading {}", self.config.state.display()))
    }

    /// Polls the state file until `cond` holds (up to PATIENCE).
    pub fn wait_state(
        &self,
        what: &str,
        cond: impl Fn(&MonitorState) -> bool,
    ) -> Result<MonitorState> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let st = self.state()?;
            if cond(&st) {
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!("{}: waited {PATIENCE:?} for {what}; state {st:?}", self.id);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_path(&self) -> Result<&Path> {
        Ok(&self.config.log.as_ref().context("no log configured")?.path)
    }

    /// Every entry of the json-file log, oldest first.
    pub fn log(&self) -> Result<Vec<Entry>> {
        let cfg = self.config.log.as_ref().context("no log configured")?;
        Ok(jsonlog::read_all(&cfg.path, cfg.max_file)?)
    }

    /// Puts the container in monitor group `group`.
    pub fn group(spec: &mut Value, group: &str) {
        spec["annotations"] = json!({ GROUP_ANNOTATION: group });
    }
}

/// Live processes whose command line (NUL-separated) contains `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
                && pid_alive(*pid)
        })
        .collect()
}

/// The proportional set size of `pid` in kB (smaps_rollup).
pub fn pss_kb(pid: i32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no Pss line in smaps_rollup")
}
