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
        fs::write(self.bundle.join("config.json"), serde_json::to_vec_pretty(spec)?)?;
        Ok(())
    }

    pub fn spec(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&fs::read(self.bundle.join("config.json"))?)?)
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

    /// `create --bundle BUNDLE ID`, tracked for cleanup.
    pub fn create(&self, id: &str) -> Result<()> {
        self.track(id);
        self.ok(["create", "--bundle"].map(OsStr::new).into_iter().chain([
            self.bundle.as_os_str(),
            OsStr::new(id),
        ]))?;
        Ok(())
    }

    /// The parsed output of `state ID`.
    pub fn state(&self, id: &str) -> Result<Value> {
        Ok(serde_json::from_str(&self.ok(["state", id])?)?)
    }

    pub fn status(&self, id: &str) -> Result<String> {
        Ok(self.state(id)?["status"].as_str().unwrap_or_default().to_owned())
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
    Path::new("/sys/fs/cgroup").join(controller).join("tasks").exists()
}

pub mod cleanup;
pub mod containerd;
pub mod image;
pub mod podman;
