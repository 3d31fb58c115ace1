//! Shared fixtures for skiff's end-to-end tests: busybox bundles made from
//! Debian's busybox-static, the skiff binary, and guards that delete what a
//! test created even when it fails.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The static busybox the rootfs is made from.
pub const BUSYBOX: &str = "/bin/busybox";

/// The workspace's target directory (tests run with the crate dir as cwd).
fn target_dir() -> PathBuf {
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Path of a workspace binary: $SKIFF_BIN_DIR/NAME, else target/release or target/debug,
/// whichever is newer. `make test` builds them first.
pub fn bin(name: &str) -> PathBuf {
    if let Ok(d) = std::env::var("SKIFF_BIN_DIR") {
        return PathBuf::from(d).join(name);
    }
    let cands = ["release", "debug"].map(|p| target_dir().join(p).join(name));
    cands
        .iter()
        .filter_map(|p| Some((fs::metadata(p).ok()?.modified().ok()?, p.clone())))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| cands[1].clone())
}

pub fn skiff_bin() -> PathBuf {
    bin("skiff")
}

/// Makes a busybox rootfs: the binary, applet symlinks, /etc/passwd and /etc/group.
pub fn make_rootfs(dir: &Path) -> Result<()> {
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing: apt-get install busybox-static");
    }
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
        "run", "home",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BUSYBOX, dir.join("bin/busybox"))?;
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    let list = Command::new(BUSYBOX).arg("--list-full").output()?;
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join(line);
        if line == "bin/busybox" || link.exists() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        symlink("/bin/busybox", &link)?;
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(dir.join("etc/hosts"), "127.0.0.1 localhost\n")?;
    Ok(())
}

/// The config.json `runc spec` writes, with terminal off and the given args.
pub fn default_spec(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "skiff",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger"]
        }
    })
}

/// A test's private world: a state root, a bundle, and the containers it made.
/// Dropping it force-deletes every container and removes the directories.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Env {
    /// A fresh state root and a busybox bundle running `args`.
    pub fn new(args: &[&str]) -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("skiff-it-").tempdir()?;
        let root = tmp.path().join("state");
        let bundle = tmp.path().join("bundle");
        make_rootfs(&bundle.join("rootfs"))?;
        let env = Self {
            root,
            bundle,
            tmp,
            ids: std::sync::Mutex::new(Vec::new()),
        };
        env.write_spec(&default_spec(args))?;
        Ok(env)
    }

    pub fn write_spec(&self, spec: &Value) -> Result<()> {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(spec)?,
        )?;
        Ok(())
    }

    pub fn spec(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&fs::read(
            self.bundle.join("config.json"),
        )?)?)
    }

    /// Changes the spec with `f`.
    pub fn edit_spec(&self, f: impl FnOnce(&mut Value)) -> Result<()> {
        let mut s = self.spec()?;
        f(&mut s);
        self.write_spec(&s)
    }

    /// Remembers an id so Drop deletes it.
    pub fn track(&self, id: &str) {
        if let Ok(mut v) = self.ids.lock() {
            v.push(id.to_owned());
        }
    }

    /// `skiff --root ROOT ARGS...` as a Command.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(skiff_bin());
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs skiff with ARGS and returns its output (any exit code).
    pub fn skiff<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).output().context("cannot run skiff")
    }

    /// Runs skiff and fails unless it exits 0; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.skiff(&args)?;
        stdout_if_ok(&args, out)
    }

    /// `create --bundle BUNDLE ID`, tracked for cleanup.
    pub fn create(&self, id: &str) -> Result<()> {
        self.track(id);
        // Not `ok`: the container's init inherits create's stdio, and a pipe
        // it holds open would make `output()` wait for as long as it lives.
        let bundle = self.bundle.as_os_str();
        self.ok_detached(["create".as_ref(), "--bundle".as_ref(), bundle, id.as_ref()])?;
        Ok(())
    }

    /// The parsed output of `state ID`.
    pub fn state(&self, id: &str) -> Result<Value> {
        Ok(serde_json::from_str(&self.ok(["state", id])?)?)
    }

    pub fn status(&self, id: &str) -> Result<String> {
        Ok(self.state(id)?["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Polls `state` until the status is `want` (up to 10 s).
    pub fn wait_status(&self, id: &str, want: &str) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = self.status(id)?;
            if s == want {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("container {id} is {s}, expected {want}");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        for id in ids {
            let _ = self.skiff(["delete", "--force", &id]);
        }
    }
}

/// True when the host mounts cgroup v1 controllers at /sys/fs/cgroup/NAME.
pub fn cgroup_v1(controller: &str) -> bool {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("tasks")
        .exists()
}

// ---------------------------------------------------------------------------
// Helpers for the runtime's core lifecycle tests: unique names, foreground
// runs with a deadline, and checks (and cleanup) of what a container leaves
// behind in the state root, cgroupfs and the mount table.

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Env {
    /// A string unique to this Env (the random part of its temp dir). Test ids
    /// and cgroup paths carry it, so parallel tests never share a cgroup.
    pub fn tag(&self) -> String {
        let name = self.tmp.path().file_name().unwrap_or_default();
        let name = name.to_string_lossy();
        name.trim_start_matches("skiff-it-").to_owned()
    }

    /// A container id unique to this test.
    pub fn uid(&self, name: &str) -> String {
        format!("{name}-{}", self.tag())
    }

    /// A linux.cgroupsPath unique to this test (one level below the root).
    pub fn cgroups_path(&self, name: &str) -> String {
        format!("/skiff-it-{}-{name}", self.tag())
    }

    /// Replaces process.args.
    pub fn set_args(&self, args: &[&str]) -> Result<()> {
        self.edit_spec(|s| s["process"]["args"] = json!(args))
    }

    /// `run [EXTRA...] --bundle BUNDLE ID` in the foreground; fails when it
    /// does not end within `timeout` (Drop then force-deletes the container).
    pub fn run_fg(&self, id: &str, extra: &[&str], timeout: std::time::Duration) -> Result<Output> {
        self.track(id);
        let mut c = self.cmd(["run"]);
        c.args(extra).arg("--bundle").arg(&self.bundle).arg(id);
        output_within(c, timeout).with_context(|| format!("skiff run {id}"))
    }

    /// `run` with a 30 s deadline; stdout when it exits with `code`.
    pub fn run_code(&self, id: &str, code: i32) -> Result<String> {
        let out = self.run_fg(id, &[], std::time::Duration::from_secs(30))?;
        if out.status.code() != Some(code) {
            bail!(
                "skiff run {id}: exit {:?}, expected {code}; stdout {:?}, stderr {:?}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `run --detach`, tracked for cleanup.
    pub fn run_detached(&self, id: &str) -> Result<()> {
        self.track(id);
        let bundle = self.bundle.as_os_str();
        self.ok_detached([
            "run".as_ref(),
            "--detach".as_ref(),
            "--bundle".as_ref(),
            bundle,
            id.as_ref(),
        ])?;
        Ok(())
    }

    /// Runs skiff with ARGS and fails unless it exits non-zero; returns stderr.
    pub fn fails<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.skiff(&args)?;
        if out.status.success() {
            bail!(
                "skiff {:?} succeeded but should have failed; stdout {:?}",
                args,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// The pid in `state ID`.
    pub fn pid(&self, id: &str) -> Result<i32> {
        let pid = self.state(id)?["pid"].as_i64().unwrap_or(0);
        if pid <= 0 {
            bail!("container {id} has no pid");
        }
        Ok(i32::try_from(pid)?)
    }

    /// Reads a file inside a running container through /proc/PID/root.
    pub fn read_in(&self, id: &str, path: &str) -> Result<String> {
        let p = format!(
            "/proc/{}/root/{}",
            self.pid(id)?,
            path.trim_start_matches('/')
        );
        fs::read_to_string(&p).with_context(|| format!("reading {p}"))
    }

    /// Everything container `id` left behind: its state dir, lock file and
    /// private bundle under the root, cgroup dirs named after it or under
    /// `cgroups_path`, and mounts under this Env's temp dir.
    pub fn leftovers(&self, id: &str, cgroups_path: Option<&str>) -> Vec<String> {
        let mut left = Vec::new();
        for p in [
            self.root.join(id),
            self.root.join(":locks").join(id),
            self.root.join(":bundles").join(id),
        ] {
            if p.exists() {
                left.push(p.display().to_string());
            }
        }
        left.extend(
            cgroup_dirs_named(id)
                .iter()
                .map(|p| p.display().to_string()),
        );
        if let Some(cp) = cgroups_path {
            left.extend(cgroup_dirs_at(cp).iter().map(|p| p.display().to_string()));
        }
        left.extend(mounts_under(self.tmp.path()));
        left
    }

    /// Fails when `leftovers` finds anything.
    pub fn assert_clean(&self, id: &str, cgroups_path: Option<&str>) -> Result<()> {
        let left = self.leftovers(id, cgroups_path);
        if !left.is_empty() {
            bail!("container {id} left behind: {left:?}");
        }
        Ok(())
    }

    /// A guard that, when dropped, kills and removes every cgroup carrying this
    /// Env's tag and unmounts whatever is mounted under its temp dir. Bind it
    /// after the Env so it runs first, before the temp dir is removed.
    pub fn guard(&self) -> Guard {
        Guard {
            tag: self.tag(),
            tmp: self.tmp.path().to_path_buf(),
        }
    }
}

/// Runs `c` to completion and returns its output; kills it after `timeout`.
/// Output goes through temp files, not pipes: a detached container inherits
/// skiff's stdout and stderr and would hold a pipe open for as long as it lives.
pub fn output_within(mut c: Command, timeout: std::time::Duration) -> Result<Output> {
    let out = tempfile::tempfile()?;
    let err = tempfile::tempfile()?;
    c.stdout(out.try_clone()?).stderr(err.try_clone()?);
    let mut child = c.spawn().context("cannot spawn")?;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {timeout:?} (killed)");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let read = |mut f: fs::File| -> Result<Vec<u8>> {
        use std::io::{Read, Seek};
        f.rewind()?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    };
    Ok(Output {
        status,
        stdout: read(out)?,
        stderr: read(err)?,
    })
}

/// The cgroup hierarchies: each v1 controller mount, or the v2 root.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
        .collect()
}

/// Existing directories for cgroup path `rel` in every hierarchy.
pub fn cgroup_dirs_at(rel: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(rel.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

/// Cgroup directories (down to three levels) whose name contains `needle`.
pub fn cgroup_dirs_named(needle: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, needle: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy().contains(needle) {
                found.push(p);
            } else if depth > 1 {
                walk(&p, needle, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    for h in cgroup_hierarchies() {
        walk(&h, needle, 3, &mut found);
    }
    found
}

/// Mount points (from /proc/self/mountinfo) at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(|m| format!("mount {m}"))
        .collect()
}

/// Whether `pid` is a live process (zombies count as gone).
pub fn pid_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Polls `cond` every 10 ms until it holds or `secs` pass.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        if std::time::Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// See `Env::guard`.
pub struct Guard {
    tag: String,
    tmp: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Test ids end in "-TAG" and test cgroup paths hold "-TAG-": with the
        // dash, a host cgroup cannot match the tag by chance.
        for dir in cgroup_dirs_named(&format!("-{}", self.tag)) {
            remove_cgroup_tree(&dir);
        }
        for m in mounts_under(&self.tmp).iter().rev() {
            let path = m.trim_start_matches("mount ");
            let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Kills every process in `dir` (a cgroup) and its children, then removes them.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::write(dir.join("cgroup.freeze"), "0");
    for _ in 0..200 {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub mod cleanup;
pub mod client;
pub mod containerd;
pub mod cri;
pub mod image;
pub mod monitor;
pub mod podman;
pub mod pty;
pub mod registry;
pub mod shim;

// ---------------------------------------------------------------------------
// Helpers the tests of single commands share: commands that leave a process
// behind, one-shot shell containers, and the files of a test's cgroup.

impl Env {
    /// Like `ok`, for a command that leaves a process holding skiff's stdio
    /// (create, run --detach, exec --detach): output goes through files, so
    /// skiff's own exit ends the wait; fails after 30 s.
    pub fn ok_detached<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = output_within(self.cmd(&args), std::time::Duration::from_secs(30))?;
        stdout_if_ok(&args, out)
    }

    /// Runs `script` with sh in a fresh container (id from `name`), expects
    /// exit 0 and nothing left behind; returns its stdout.
    pub fn sh(&self, name: &str, script: &str) -> Result<String> {
        self.set_args(&["sh", "-c", script])?;
        let id = self.uid(name);
        let out = self.run_code(&id, 0)?;
        self.assert_clean(&id, None)?;
        Ok(out)
    }
}

/// What `skiff ARGS` printed (`out`) when it exited 0; else an error with
/// its status and stderr.
fn stdout_if_ok(args: &[std::ffi::OsString], out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "skiff {:?} failed ({}): {}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cgroupfs directory of cgroup path `rel` for `controller`: in the
/// controller's own hierarchy on a v1 host, in the unified one otherwise.
pub fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if cgroup_v1(controller) {
        Path::new(CGROUP_ROOT).join(controller).join(rel)
    } else {
        Path::new(CGROUP_ROOT).join(rel)
    }
}

/// A file's text without surrounding white space; the error names the file.
pub fn read_trimmed(path: &Path) -> Result<String> {
    Ok(fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}
