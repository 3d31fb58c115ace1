//! The runc-compatible runtime binary (skiff by default): each call's typed
//! options become its argument list. Running the commands is the caller's
//! business (the server goes through the reaper, `delete` runs them directly).

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Runtime {
    pub binary: PathBuf,
    /// State root of this namespace's containers (`--root`).
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// JSON log the runtime writes; its last error explains a failure.
    pub log: Option<PathBuf>,
}

#[derive(Debug)]
pub struct CreateOpts<'a> {
    pub bundle: &'a Path,
    pub pid_file: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

#[derive(Debug)]
pub struct ExecOpts<'a> {
    pub process: &'a Path,
    pub pid_file: &'a Path,
    pub console_socket: Option<&'a Path>,
}

impl Runtime {
    fn base(&self) -> Command {
        let mut c = Command::new(&self.binary);
        // Paths are absolute; a removed bundle must not be the runtime's cwd.
        c.current_dir("/");
        c.arg("--root").arg(&self.root);
        if let Some(log) = &self.log {
            c.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c
    }

    pub fn create(&self, id: &str, o: &CreateOpts) -> Command {
        let mut c = self.base();
        c.arg("create")
            .arg("--bundle")
            .arg(o.bundle)
            .arg("--pid-file")
            .arg(o.pid_file);
        if let Some(s) = o.console_socket {
            c.arg("--console-socket").arg(s);
        }
        if o.no_pivot {
            c.arg("--no-pivot");
        }
        if o.no_new_keyring {
            c.arg("--no-new-keyring");
        }
        c.arg(id);
        c
    }

    pub fn exec(&self, id: &str, o: &ExecOpts) -> Command {
        let mut c = self.base();
        c.arg("exec")
            .arg("--process")
            .arg(o.process)
            .arg("--detach")
            .arg("--pid-file")
            .arg(o.pid_file);
        if let Some(s) = o.console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(id);
        c
    }

    pub fn start(&self, id: &str) -> Command {
        self.simple("start", id)
    }

    pub fn pause(&self, id: &str) -> Command {
        self.simple("pause", id)
    }

    pub fn resume(&self, id: &str) -> Command {
        self.simple("resume", id)
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Command {
        let mut c = self.base();
        c.arg("kill");
        if all {
            c.arg("--all");
        }
        c.arg(id).arg(signal.to_string());
        c
    }

    pub fn delete(&self, id: &str, force: bool) -> Command {
        let mut c = self.base();
        c.arg("delete");
        if force {
            c.arg("--force");
        }
        c.arg(id);
        c
    }

    /// `update --resources - ID`: the LinuxResources JSON goes on stdin.
    pub fn update(&self, id: &str) -> Command {
        let mut c = self.base();
        c.args(["update", "--resources", "-", id]);
        c
    }

    pub fn ps(&self, id: &str) -> Command {
        let mut c = self.base();
        c.args(["ps", "--format", "json", id]);
        c
    }

    fn simple(&self, verb: &str, id: &str) -> Command {
        let mut c = self.base();
        c.arg(verb).arg(id);
        c
    }

    /// The message of the last error record in the JSON log, if any.
    pub fn last_error(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.log.as_ref()?).ok()?;
        text.lines().rev().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v.get("level")?.as_str()? == "error")
                .then(|| v.get("msg")?.as_str().map(String::from))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn rt() -> Runtime {
        Runtime {
            binary: "skiff".into(),
            root: "/r".into(),
            systemd_cgroup: false,
            log: Some("/b/log.json".into()),
        }
    }

    #[test]
    fn create_line() {
        let c = rt().create(
            "c1",
            &CreateOpts {
                bundle: Path::new("/b"),
                pid_file: Path::new("/b/init.pid"),
                console_socket: Some(Path::new("/tmp/pty.sock")),
                no_pivot: false,
                no_new_keyring: false,
            },
        );
        assert_eq!(
            args(&c).join(" "),
            "--root /r --log /b/log.json --log-format json create --bundle /b \
             --pid-file /b/init.pid --console-socket /tmp/pty.sock c1"
        );
    }

    #[test]
    fn kill_and_exec_lines() {
        assert_eq!(
            args(&rt().kill("c1", 9, true)).join(" "),
            "--root /r --log /b/log.json --log-format json kill --all c1 9"
        );
        let e = rt().exec(
            "c1",
            &ExecOpts {
                process: Path::new("/p.json"),
                pid_file: Path::new("/p.pid"),
                console_socket: None,
            },
        );
        assert!(args(&e)
            .join(" ")
            .ends_with("exec --process /p.json --detach --pid-file /p.pid c1"));
    }

    #[test]
    fn last_error_reads_json_log() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("skiff-shim-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("log.json");
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"first\"}\n{\"level\":\"error\",\"msg\":\"exec: /x: not found\"}\n{\"level\":\"info\",\"msg\":\"x\"}\n",
        )?;
        let mut r = rt();
        r.log = Some(log);
        let got = r.last_error();
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(got.as_deref(), Some("exec: /x: not found"));
        Ok(())
    }
}
