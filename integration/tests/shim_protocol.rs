//! The shim binary's own protocol, without containerd: `start` answers a plain
//! address or containerd 2.x's version 3 bootstrap JSON (and reuses a live
//! shim), the server answers `containerd.task.v3.Task` and
//! `containerd.task.v2.Task` on one socket (a small ttrpc client here),
//! `delete` prints a DeleteResponse, and `-info` a RuntimeInfo.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use skiff_integration::shim::{bytes_field, call, fields, NOT_FOUND, SHIM, UNIMPLEMENTED};
use skiff_integration::{bin, pid_alive, skiff_bin, wait_until};

/// A shim started by the test: killed, and its socket removed, when dropped.
struct StartedShim {
    pid: i32,
    socket: PathBuf,
}

impl Drop for StartedShim {
    fn drop(&mut self) {
        if pid_alive(self.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn start_cmd(bundle: &Path, address: &Path, id: &str, max_version: Option<&str>) -> Command {
    start_shim_cmd(&bin(SHIM), bundle, address, id, max_version)
}

/// `SHIM start` for `id` in `bundle`, published to nothing.
fn start_shim_cmd(
    shim: &Path,
    bundle: &Path,
    address: &Path,
    id: &str,
    max_version: Option<&str>,
) -> Command {
    let mut cmd = Command::new(shim);
    cmd.args(["-namespace", "skiff-protocol-test", "-address"])
        .arg(address)
        .args(["-publish-binary", "/bin/true", "-id", id, "start"])
        .current_dir(bundle)
        .env_remove("TTRPC_ADDRESS")
        .env_remove("MAX_SHIM_VERSION");
    if let Some(v) = max_version {
        cmd.env("MAX_SHIM_VERSION", v);
    }
    cmd
}

/// Fails with the shim's status and stderr unless it exited 0.
fn succeeded(what: &str, out: &std::process::Output) -> Result<()> {
    if !out.status.success() {
        bail!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn connect_request(id: &str) -> Vec<u8> {
    let mut b = Vec::new();
    bytes_field(1, id.as_bytes(), &mut b);
    b
}

#[test]
fn start_serves_task_v2_and_v3_on_one_socket() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-shim-proto-")
        .tempdir()?;
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle)?;
    // A unique containerd address: the socket path is a hash of it.
    let address = tmp.path().join("containerd.sock");
    let id = "proto";

    let out = start_cmd(&bundle, &address, id, Some("3")).output()?;
    succeeded("start", &out)?;
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("start printed {:?}", String::from_utf8_lossy(&out.stdout)))?;
    let addr = reply["address"].as_str().unwrap_or_default().to_string();
    let socket = PathBuf::from(addr.trim_start_matches("unix://"));
    let pid: i32 = std::fs::read_to_string(bundle.join("shim.pid"))?
        .trim()
        .parse()?;
    let shim = StartedShim { pid, socket };
    if reply["version"] != 3
        || reply["protocol"] != "ttrpc"
        || !addr.starts_with("unix:///run/containerd/s/")
    {
        bail!("start with MAX_SHIM_VERSION=3 printed {reply}");
    }
    if std::fs::read_to_string(bundle.join("address"))? != addr {
        bail!("the bundle's address file does not hold {addr}");
    }

    // A second start for the same container finds the live shim and, for a
    // containerd before 2.0, prints the plain address.
    let out = start_cmd(&bundle, &address, id, None).output()?;
    if !out.status.success() || String::from_utf8_lossy(&out.stdout) != addr {
        bail!(
            "second start: {}, stdout {:?}, stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pid_now: i32 = std::fs::read_to_string(bundle.join("shim.pid"))?
        .trim()
        .parse()?;
    if pid_now != pid {
        bail!("a second shim was started ({pid_now}, first {pid})");
    }

    let mut conn = UnixStream::connect(&shim.socket)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    for (stream, service) in [
        (1, "containerd.task.v3.Task"),
        (3, "containerd.task.v2.Task"),
    ] {
        let resp = call(&mut conn, stream, service, "Connect", &connect_request(id))?
            .map_err(|(code, msg)| anyhow::anyhow!("{service}/Connect: code {code}: {msg}"))?;
        let shim_pid = fields(&resp)?.into_iter().find(|f| f.0 == 1).map(|f| f.2);
        if shim_pid != Some(pid as u64) {
            bail!("{service}/Connect: shim_pid {shim_pid:?}, want {pid}");
        }
    }
    match call(
        &mut conn,
        5,
        "containerd.task.v3.Task",
        "Checkpoint",
        &connect_request(id),
    )? {
        Err((UNIMPLEMENTED, _)) => {}
        other => bail!("Checkpoint answered {other:?}, want UNIMPLEMENTED"),
    }
    match call(
        &mut conn,
        7,
        "containerd.task.v2.Task",
        "State",
        &connect_request("nope"),
    )? {
        Err((NOT_FOUND, _)) => {}
        other => bail!("State of an unknown task answered {other:?}, want NOT_FOUND"),
    }
    // Shutdown with no containers: the shim exits and removes its socket.
    call(
        &mut conn,
        9,
        "containerd.task.v3.Task",
        "Shutdown",
        &connect_request(id),
    )?
    .map_err(|(code, msg)| anyhow::anyhow!("Shutdown: code {code}: {msg}"))?;
    wait_until(5, "the shim to exit", || !pid_alive(pid))?;
    if shim.socket.exists() {
        bail!("the shim left its socket {}", shim.socket.display());
    }
    Ok(())
}

#[test]
fn delete_action_prints_a_killed_exit() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-shim-del-")
        .tempdir()?;
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle)?;
    let opts = serde_json::json!({
        "BinaryName": skiff_bin(),
        "Root": tmp.path().join("state"),
    });
    std::fs::write(bundle.join("options.json"), opts.to_string())?;
    let out = Command::new(bin(SHIM))
        .args(["-namespace", "ns", "-id", "gone", "-bundle"])
        .arg(&bundle)
        .arg("delete")
        .current_dir(&bundle)
        .output()?;
    succeeded("delete", &out)?;
    let got = fields(&out.stdout)?;
    let status = got.iter().find(|f| f.0 == 2).map(|f| f.2);
    if status != Some(137) || !got.iter().any(|f| f.0 == 3) {
        bail!("DeleteResponse fields {got:?}: want exit_status 137 and exited_at");
    }
    Ok(())
}

/// `<shim> -info` with `stdin` as its standard input.
fn info(stdin: &[u8]) -> Result<std::process::Output> {
    let mut child = Command::new(bin(SHIM))
        .arg("-info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().context("no stdin pipe")?;
    std::io::Write::write_all(&mut input, stdin)?;
    drop(input);
    Ok(child.wait_with_output()?)
}

/// runc's options (containerd.runc.v1.Options, binary_name only) in an Any.
fn runc_options_any(binary: &Path) -> Vec<u8> {
    runc_options_with_root(binary, None)
}

/// containerd.runc.v1.Options with binary_name and, if given, root, in an Any.
fn runc_options_with_root(binary: &Path, root: Option<&Path>) -> Vec<u8> {
    let mut options = Vec::new();
    bytes_field(6, binary.as_os_str().as_encoded_bytes(), &mut options);
    if let Some(r) = root {
        bytes_field(7, r.as_os_str().as_encoded_bytes(), &mut options);
    }
    let mut any = Vec::new();
    bytes_field(1, b"containerd.runc.v1.Options", &mut any);
    bytes_field(2, &options, &mut any);
    any
}

#[test]
fn info_prints_runtime_info_with_the_runtimes_features() -> Result<()> {
    let options = runc_options_any(&skiff_bin());
    let out = info(&options)?;
    succeeded("-info", &out)?;
    let got = fields(&out.stdout)?;
    let field = |n: u64| got.iter().find(|f| f.0 == n).map(|f| f.1.clone());
    if field(1).as_deref() != Some(b"io.containerd.skiff.v2".as_slice()) {
        bail!("RuntimeInfo name {:?}", field(1));
    }
    let version = fields(&field(2).context("no version")?)?;
    if !version.iter().any(|f| f.0 == 1 && !f.1.is_empty()) {
        bail!("RuntimeVersion {version:?} has no version");
    }
    if field(3) != Some(options) {
        bail!("RuntimeInfo options {:?} are not the ones given", field(3));
    }
    let features = fields(&field(4).context("no features")?)?;
    let type_url = features.iter().find(|f| f.0 == 1).map(|f| f.1.as_slice());
    if type_url != Some(b"types.containerd.io/opencontainers/runtime-spec/1/features/Features") {
        bail!("features type {:?}", type_url.map(String::from_utf8_lossy));
    }
    let json = features
        .iter()
        .find(|f| f.0 == 2)
        .context("no features value")?;
    let got: serde_json::Value = serde_json::from_slice(&json.1)?;
    let want: serde_json::Value =
        serde_json::from_slice(&Command::new(skiff_bin()).arg("features").output()?.stdout)?;
    if got != want || got["ociVersionMax"].as_str().is_none() {
        bail!("features {got} are not skiff's {want}");
    }
    Ok(())
}

#[test]
fn info_without_runtime_features_or_with_bad_options() -> Result<()> {
    // The options choose the runtime; one without `features` leaves them out.
    let out = info(&runc_options_any(Path::new("/bin/false")))?;
    succeeded("-info", &out)?;
    let got = fields(&out.stdout)?;
    if got.iter().any(|f| f.0 == 4) || !got.iter().any(|f| f.0 == 1) {
        bail!("RuntimeInfo fields {got:?}: want a name and no features");
    }
    // No options at all: the default runtime, still an answer.
    let out = info(b"")?;
    succeeded("-info without options", &out)?;
    if !fields(&out.stdout)?.iter().any(|f| f.0 == 1) {
        bail!("-info without options printed no name");
    }
    // Bytes that are no Any: a clear error, nothing on stdout.
    let out = info(b"\xff\xff\xff")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !out.stdout.is_empty() || !stderr.contains("runtime options") {
        bail!("-info with garbage: {}: stderr {stderr:?}", out.status);
    }
    Ok(())
}

/// containerd deletes a task whose start failed or never came without
/// force (its runc shim runs plain `runc delete`); skiff must then kill the
/// created container's init and delete it, under both shims.
#[test]
fn created_task_is_deleted_without_start() -> Result<()> {
    for shim in [bin(SHIM), PathBuf::from("/usr/bin/containerd-shim-runc-v2")] {
        if !shim.exists() {
            bail!("{} is missing", shim.display());
        }
        delete_created_task(&shim).with_context(|| format!("with {}", shim.display()))?;
    }
    Ok(())
}

fn delete_created_task(shim_bin: &Path) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-shim-created-")
        .tempdir()?;
    let tag = tmp
        .path()
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let bundle = tmp.path().join("bundle");
    skiff_integration::make_rootfs(&bundle.join("rootfs"))?;
    let cgroup = format!("/{tag}");
    let mut spec = skiff_integration::default_spec(&["sleep", "1000"]);
    spec["linux"]["cgroupsPath"] = serde_json::json!(cgroup);
    std::fs::write(bundle.join("config.json"), spec.to_string())?;
    let state = tmp.path().join("state");
    let address = tmp.path().join("containerd.sock");
    let id = "created";

    // containerd's runc shim logs into a FIFO named `log` in the bundle,
    // which containerd makes and reads; the shim exits without one.
    let _log = LogDrain::new(bundle.join("log"))?;
    let mut start = start_shim_cmd(shim_bin, &bundle, &address, id, None);
    start.env("TTRPC_ADDRESS", tmp.path().join("containerd.sock.ttrpc"));
    let out = start.output()?;
    succeeded("start", &out)?;
    let addr = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let socket = PathBuf::from(addr.trim_start_matches("unix://"));
    let mut conn = UnixStream::connect(&socket)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let service = "containerd.task.v2.Task";
    // The shim's pid from Connect (containerd's runc shim writes no shim.pid).
    let reply = call(&mut conn, 7, service, "Connect", &connect_request(id))?
        .map_err(|(code, msg)| anyhow::anyhow!("Connect: code {code}: {msg}"))?;
    let pid = fields(&reply)?
        .into_iter()
        .find(|f| f.0 == 1)
        .map(|f| f.2)
        .context("Connect returned no shim pid")?;
    let pid = i32::try_from(pid)?;
    let _shim = StartedShim {
        pid,
        socket: socket.clone(),
    };

    let mut create = Vec::new();
    bytes_field(1, id.as_bytes(), &mut create);
    bytes_field(2, bundle.as_os_str().as_encoded_bytes(), &mut create);
    bytes_field(
        10,
        &runc_options_with_root(&skiff_bin(), Some(&state)),
        &mut create,
    );
    let reply = call(&mut conn, 1, service, "Create", &create)?
        .map_err(|(code, msg)| anyhow::anyhow!("Create: code {code}: {msg}"))?;
    let init = fields(&reply)?
        .into_iter()
        .find(|f| f.0 == 1)
        .map(|f| f.2)
        .context("Create returned no pid")?;
    let init = i32::try_from(init)?;
    if !pid_alive(init) {
        bail!("the created container's init {init} is not alive");
    }

    let reply = call(&mut conn, 3, service, "Delete", &connect_request(id))?
        .map_err(|(code, msg)| anyhow::anyhow!("Delete of a created task: code {code}: {msg}"))?;
    let got = fields(&reply)?;
    if got.iter().find(|f| f.0 == 1).map(|f| f.2) != Some(init as u64) {
        bail!("DeleteResponse {got:?} does not name pid {init}");
    }
    wait_until(10, "the created init to be gone", || !pid_alive(init))?;
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if left.iter().any(|n| n == id) {
        bail!("skiff's state of {id} is left in {}", state.display());
    }
    let cgroups = skiff_integration::cgroup_dirs_at(&cgroup);
    if !cgroups.is_empty() {
        bail!("cgroups left: {cgroups:?}");
    }
    // The shims themselves end on drop (containerd's keeps trying to
    // publish its events to a containerd that is not there).
    Ok(())
}

/// A FIFO read to its end by a thread, as containerd reads a shim's log.
struct LogDrain {
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogDrain {
    fn new(path: PathBuf) -> Result<Self> {
        use nix::sys::stat::Mode;
        nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)?;
        let fifo = path.clone();
        let thread = std::thread::spawn(move || {
            if let Ok(mut f) = std::fs::File::open(&fifo) {
                let _ = std::io::copy(&mut f, &mut std::io::sink());
            }
        });
        Ok(Self {
            path,
            thread: Some(thread),
        })
    }
}

impl Drop for LogDrain {
    fn drop(&mut self) {
        // A writer that opens and closes ends a reader still waiting in open.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
