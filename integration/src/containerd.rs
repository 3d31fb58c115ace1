//! A private containerd 1.6 for a test: its own root, state dir, socket and
//! namespace, driven with `ctr`, its tasks run by the stock runc v2 shim with
//! skiff as the shim's runc binary. Drop kills what is left (container
//! processes, shims, containerd), unmounts and removes everything. With a CRI
//! section (see `crate::cri`) the CRI plugin runs too, in its fixed namespace.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cleanup::{kill_cgroups_at, unmount_all};
use crate::client::{self, Client};
use crate::image::{busybox_archive, IMAGE_REF};

/// The containerd namespace the CRI plugin works in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// Writes what a CRI-enabled containerd needs into its temp dir (given the dir
/// and its unique tag) and returns the CRI plugin's section of config.toml.
pub(crate) type CriSection<'a> = &'a dyn Fn(&Path, &str) -> Result<String>;
use crate::{cgroup_dirs_at, mounts_under};

/// Where containerd 1.6 puts shim sockets, whatever its state dir.
const SHIM_SOCKETS: &str = "/run/containerd/s/";

pub struct Containerd {
    pub tmp: tempfile::TempDir,
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// The containerd namespace ctr works in.
    pub namespace: String,
    /// The parent cgroup of its containers (unique to this containerd).
    pub cgroup_parent: String,
    daemon: Option<Child>,
    calls: PathBuf,
    /// The private bin dir is first on containerd's PATH (to find a shim there).
    bin_on_path: bool,
    /// `ctr run` flags that choose the runtime (see `run_flags`).
    runtime: Vec<OsString>,
}

impl Containerd {
    /// Starts containerd and waits until it answers.
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    /// Like `start`; with `bin_on_path` containerd's PATH begins with the
    /// private bin dir (`bin_dir`), where a test can put a shim binary.
    pub fn start_with(bin_on_path: bool) -> Result<Self> {
        Self::start_configured(bin_on_path, None)
    }

    /// Like `start_with`; with `cri` the CRI plugin is enabled with the
    /// section it returns, and ctr works in the CRI's namespace.
    pub(crate) fn start_configured(bin_on_path: bool, cri: Option<CriSection>) -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("skiff-ctd-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        let tag = dir.file_name().unwrap_or_default().to_string_lossy();
        let cgroup_parent = tag.into_owned();
        for d in ["root", "state", "fifo", "runc", "bin"] {
            fs::create_dir_all(dir.join(d))?;
        }
        let calls = dir.join("skiff-calls.log");
        client::write_wrapper(&dir.join("bin/skiff"), &calls, None)?;
        let socket = dir.join("containerd.sock");
        let (namespace, cri_disabled, cri_section) = match cri {
            Some(section) => (CRI_NAMESPACE.to_owned(), "", section(&dir, &cgroup_parent)?),
            None => (
                cgroup_parent.clone(),
                "\n  \"io.containerd.grpc.v1.cri\",",
                String::new(),
            ),
        };
        // Only what ctr run needs: content, metadata, overlayfs snapshots,
        // tasks (and CRI when asked for).
        let config = format!(
            r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = [{cri_disabled}
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{sock}"

[plugins."io.containerd.gc.v1.scheduler"]
  startup_delay = "0s"
{cri_section}"#,
            dir = dir.display(),
            sock = socket.display()
        );
        fs::write(dir.join("config.toml"), config)?;
        let runtime = vec![
            "--runc-binary".into(),
            dir.join("bin/skiff").into(),
            "--runc-root".into(),
            dir.join("runc").into(),
        ];
        let mut c = Self {
            tmp,
            socket,
            namespace,
            cgroup_parent,
            daemon: None,
            calls,
            bin_on_path,
            runtime,
        };
        c.daemon = Some(c.spawn_daemon()?);
        c.wait_ready()?;
        Ok(c)
    }

    fn spawn_daemon(&self) -> Result<Child> {
        let dir = self.tmp.path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("containerd.log"))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if self.bin_on_path {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", self.bin_dir().display()));
        }
        cmd.spawn()
            .context("cannot start containerd (apt-get install containerd)")
    }

    /// The private bin dir (the skiff wrapper lives here).
    pub fn bin_dir(&self) -> PathBuf {
        self.tmp.path().join("bin")
    }

    /// Stops containerd (SIGTERM; shims keep running) and starts it again.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut d) = self.daemon.take() {
            let _ = kill(Pid::from_raw(d.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(d.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = fs::remove_file(&self.socket);
        self.daemon = Some(self.spawn_daemon()?);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(d) = self.daemon.as_mut() {
                if let Some(st) = d.try_wait()? {
                    bail!("containerd exited ({st}):\n{}", self.log());
                }
            }
            if self.socket.exists() && self.run(["version"])?.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("containerd did not answer within 20 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// containerd's own log, for error messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.tmp.path().join("containerd.log")).unwrap_or_default()
    }

    /// Imports the busybox OCI archive as IMAGE_REF and returns that name.
    pub fn import_busybox(&self) -> Result<&'static str> {
        self.import_archive(&busybox_archive()?, IMAGE_REF)?;
        Ok(IMAGE_REF)
    }

    /// Imports the OCI archive `archive`, whose index names its image `reference`.
    pub fn import_archive(&self, archive: &Path, reference: &str) -> Result<()> {
        // The archive names its image in the index; --base-name keeps that name
        // (without it ctr prefixes an import-DATE name).
        let base = reference.rsplit_once(':').map_or(reference, |(b, _)| b);
        let mut args: Vec<OsString> = ["images", "import", "--base-name", base]
            .map(OsString::from)
            .into();
        args.push(archive.into());
        self.ok(&args).context("ctr images import")?;
        let names = self.ok(["images", "ls", "--quiet"])?;
        if !names.lines().any(|l| l == reference) {
            bail!("imported images are {names:?}, not {reference}");
        }
        Ok(())
    }

    /// Replaces the `ctr run` flags that choose the runtime (by default the
    /// runc v2 shim with skiff as its runc binary and a private root).
    pub(crate) fn set_runtime_flags(&mut self, flags: Vec<OsString>) {
        self.runtime = flags;
    }

    /// The flags that make `ctr run` use skiff through the chosen shim,
    /// with its state, FIFOs and cgroups private to this containerd.
    pub fn run_flags(&self, id: &str) -> Vec<OsString> {
        let mut flags = self.runtime.clone();
        flags.extend([
            "--fifo-dir".into(),
            self.fifo_dir().into(),
            "--cgroup".into(),
            format!("/{}/{id}", self.cgroup_parent).into(),
        ]);
        flags
    }

    /// Where ctr makes the FIFOs of tasks and execs.
    fn fifo_dir(&self) -> PathBuf {
        self.tmp.path().join("fifo")
    }

    /// `ctr run RUN_FLAGS ARGS...` where ARGS are ctr run's own: the flags
    /// from `run_flags` go first.
    pub fn ctr_run(&self, id: &str, args: &[&str]) -> Result<Output> {
        let mut all: Vec<OsString> = vec!["run".into()];
        all.extend(self.run_flags(id));
        all.extend(args.iter().map(OsString::from));
        self.run(all)
    }

    /// `ctr run --detach` of `args` (IMAGE ID CMD...), failing loudly; returns
    /// once the task runs.
    pub fn run_detached(&self, id: &str, args: &[&str]) -> Result<()> {
        let mut all = vec!["--detach"];
        all.extend_from_slice(args);
        let out = self.ctr_run(id, &all)?;
        self.expect_output(&format!("ctr run -d {id}"), &out, out.status.success())?;
        self.wait_task(id, "RUNNING")
    }

    /// `ctr task exec --exec-id EXEC ID CMD...` with private FIFOs.
    pub fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Result<Output> {
        let mut args: Vec<OsString> = ["task", "exec", "--exec-id", exec_id, "--fifo-dir"]
            .map(OsString::from)
            .into();
        args.push(self.fifo_dir().into());
        args.push(id.into());
        args.extend(cmd.iter().map(OsString::from));
        self.run(args)
    }

    /// `ctr ARGS` (one shell-quoted line) with a terminal, which ctr wants
    /// for --tty; all it wrote there is the output's stdout.
    pub fn ctr_with_tty(&self, args: &str) -> Result<Output> {
        let line = format!(
            "exec ctr --address {} --namespace {} {args}",
            self.socket.display(),
            self.namespace
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &line]);
        crate::pty::output_on_pty(cmd, Duration::from_secs(60))
    }

    /// Fails with `what`, the command's status and output, skiff's calls and
    /// containerd's log unless `good`.
    pub fn expect_output(&self, what: &str, out: &Output, good: bool) -> Result<()> {
        if good {
            return Ok(());
        }
        bail!(
            "{what}: {}, stdout {:?}, stderr {:?}\nskiff calls:\n{}\ncontainerd log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            self.calls(),
            self.log()
        )
    }

    /// `ctr task ps` lists task `id`'s pid; `pause` and `resume` take it to
    /// PAUSED and back to RUNNING.
    pub fn ps_pause_resume(&self, id: &str) -> Result<()> {
        let pid = self.task_pid(id)?;
        let ps = self.ok(["task", "ps", id])?;
        if !ps
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(&pid))
        {
            bail!("ctr task ps does not list the task's pid {pid}: {ps:?}");
        }
        self.ok(["task", "pause", id])?;
        self.wait_task(id, "PAUSED")?;
        self.ok(["task", "resume", id])?;
        self.wait_task(id, "RUNNING")
    }

    /// Kills task `id` (SIGKILL), waits for it to stop, deletes it and its container.
    pub fn remove_task(&self, id: &str) -> Result<()> {
        self.ok(["task", "kill", "--signal", "SIGKILL", id])?;
        self.wait_task(id, "STOPPED")?;
        self.ok(["task", "delete", id])?;
        self.ok(["container", "delete", id])?;
        Ok(())
    }

    /// The bundle containerd made for task `id` (the shim's working directory).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.tmp
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    /// The status column of `ctr task ls` for `id` (RUNNING, STOPPED, ...).
    pub fn task_status(&self, id: &str) -> Result<Option<String>> {
        let out = self.ok(["task", "ls"])?;
        Ok(out.lines().skip(1).find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&id)).then(|| cols.last().unwrap_or(&"").to_string())
        }))
    }

    /// The pid column of `ctr task ls` for `id`.
    pub fn task_pid(&self, id: &str) -> Result<String> {
        let out = self.ok(["task", "ls"])?;
        out.lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&id))
            .and_then(|cols| cols.get(1).map(|p| p.to_string()))
            .with_context(|| format!("task {id} is not in {out:?}"))
    }

    /// Polls until task `id` has `status`, up to 10 s.
    pub fn wait_task(&self, id: &str, status: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.task_status(id)?;
            if now.as_deref() == Some(status) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("task {id} is {now:?}, expected {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// skiff's state root for this namespace (runc root/NAMESPACE, as the shim passes it).
    pub fn skiff_root(&self) -> PathBuf {
        self.tmp.path().join("runc").join(&self.namespace)
    }

    /// What the containers left behind: tasks, containers, skiff state,
    /// container cgroups, rootfs mounts and shims still running.
    pub fn leftovers(&self) -> Result<Vec<String>> {
        let mut left = Vec::new();
        for kind in ["tasks", "containers"] {
            for id in self.ok([kind, "ls", "--quiet"])?.lines() {
                left.push(format!("{kind} {id}"));
            }
        }
        if let Ok(entries) = fs::read_dir(self.skiff_root()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with(':') {
                    left.push(format!("skiff state {name}"));
                }
            }
        }
        for dir in cgroup_dirs_at(&self.cgroup_parent) {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    left.push(e.path().display().to_string());
                }
            }
        }
        left.extend(mounts_under(&self.tmp.path().join("state")));
        left.extend(self.shims().iter().map(|p| format!("shim pid {p}")));
        Ok(left)
    }

    /// Fails when `leftovers` finds anything.
    pub fn assert_clean(&self) -> Result<()> {
        let left = self.leftovers()?;
        if !left.is_empty() {
            bail!("containerd containers left behind: {left:?}");
        }
        Ok(())
    }

    /// Pids of the shims this containerd started: they outlive it by design.
    pub fn shims(&self) -> Vec<i32> {
        let sock = self.socket.to_string_lossy().into_owned();
        let Ok(procs) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<String> = cmdline
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                args.first().is_some_and(|a| a.contains("containerd-shim")) && args.contains(&sock)
            })
            .collect()
    }
}

impl Client for Containerd {
    const PROGRAM: &'static str = "ctr";
    const CALLER: &'static str = "the shim";

    /// `ctr --address SOCK --namespace NS ARGS...` as a Command.
    fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn calls_log(&self) -> &Path {
        &self.calls
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The containers: every process in this containerd's cgroups.
        kill_cgroups_at(&self.cgroup_parent);
        let shims = self.shims();
        let sockets: Vec<PathBuf> = shims.iter().flat_map(|p| unix_sockets_of(*p)).collect();
        for pid in &shims {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = kill(Pid::from_raw(d.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(d.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // Shims are not our children: wait for them to be gone from /proc.
        let deadline = Instant::now() + Duration::from_secs(5);
        while shims.iter().any(|p| crate::pid_alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A killed shim leaves its socket under /run/containerd/s.
        for s in sockets {
            let _ = fs::remove_file(s);
        }
        unmount_all(self.tmp.path());
        kill_cgroups_at(&self.cgroup_parent);
    }
}

/// A command's output as text, for comparisons and messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Filesystem paths of the unix sockets process `pid` holds.
fn unix_sockets_of(pid: i32) -> Vec<PathBuf> {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let target = fs::read_link(e.path()).ok()?;
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path
    fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.get(7)?;
            (inodes.iter().any(|i| Some(&i.as_str()) == cols.get(6))
                && path.starts_with(SHIM_SOCKETS))
            .then(|| PathBuf::from(path))
        })
        .collect()
}
