//! One health probe: the check runs inside the container like an exec
//! (`runtime exec --detach` with the container process's env, user, cwd and
//! capabilities from config.json), its stdout and stderr captured, killed
//! after the timeout. The shim is the child subreaper of the probe, so its
//! exit comes through the reaper like every other; it never outlives the
//! probe, nor does anything it left in its process group.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};
use serde_json::{json, Value};
use skiff_specs::monitor::{HealthResult, HEALTH_OUTPUT_MAX};

use super::health::go_duration;
use super::state::rfc3339;
use crate::reaper::Reaper;
use crate::runtime::{ExecOpts, Runtime};

/// How long the runtime may take to start a probe; like docker, not part
/// of the probe's timeout.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a killed probe may take to be reaped (a frozen one never is).
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How often a running probe looks whether the container is stopping.
const TICK: Duration = Duration::from_millis(100);

/// The check of one container, ready to run.
pub struct Probe {
    reaper: Arc<Reaper>,
    runtime: Runtime,
    id: String,
    spec_file: PathBuf,
    pid_file: PathBuf,
}

/// How a probe ended.
enum Outcome {
    Exited(i32, Output),
    TimedOut(Output),
    /// It could not be started (docker: exit -1 with the error as output).
    Failed(String),
    /// The container stops: no result.
    Stopped,
}

/// The command of a HEALTHCHECK test; None for none (NONE, empty, unknown).
pub fn command(test: &[String]) -> Option<Vec<String>> {
    let (kind, rest) = test.split_first()?;
    if rest.is_empty() {
        return None;
    }
    match kind.as_str() {
        "CMD" => Some(rest.to_vec()),
        "CMD-SHELL" => {
            let mut argv = vec!["/bin/sh".to_string(), "-c".to_string()];
            argv.extend_from_slice(rest);
            Some(argv)
        }
        _ => None,
    }
}

impl Probe {
    /// Prepares the probe's process spec from the bundle's config.json.
    pub fn new(
        reaper: Arc<Reaper>,
        runtime: Runtime,
        id: &str,
        bundle: &Path,
        argv: Vec<String>,
    ) -> Result<Self> {
        let config = bundle.join("config.json");
        let text =
            fs::read(&config).with_context(|| format!("cannot read {}", config.display()))?;
        let spec: Value = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not JSON", config.display()))?;
        let mut process = spec
            .get("process")
            .cloned()
            .with_context(|| format!("{} has no process", config.display()))?;
        let fields = process
            .as_object_mut()
            .context("the container's process is no JSON object")?;
        fields.insert("args".into(), json!(argv));
        fields.insert("terminal".into(), json!(false));
        fields.remove("consoleSize");
        let spec_file = bundle.join(".skiff-health.process.json");
        fs::write(&spec_file, serde_json::to_vec(&process)?)
            .with_context(|| format!("cannot write {}", spec_file.display()))?;
        Ok(Self {
            reaper,
            runtime,
            id: id.to_string(),
            spec_file,
            pid_file: bundle.join(".skiff-health.pid"),
        })
    }

    /// Runs the check once; None when `stopping` said so meanwhile.
    pub fn run(&self, timeout: Duration, stopping: &dyn Fn() -> bool) -> Option<HealthResult> {
        let start = SystemTime::now();
        let (exit_code, output) = match self.exec(timeout, stopping) {
            Outcome::Exited(code, out) => (code, out.text()),
            Outcome::TimedOut(out) => {
                let out = out.text();
                let limit = go_duration(timeout);
                let msg = if out.is_empty() {
                    format!("Health check exceeded timeout ({limit})")
                } else {
                    format!("Health check exceeded timeout ({limit}): {out}")
                };
                (-1, msg)
            }
            Outcome::Failed(msg) => (-1, msg),
            Outcome::Stopped => return None,
        };
        Some(HealthResult {
            start: rfc3339(start),
            end: rfc3339(SystemTime::now()),
            exit_code,
            output,
        })
    }

    fn exec(&self, timeout: Duration, stopping: &dyn Fn() -> bool) -> Outcome {
        let _ = fs::remove_file(&self.pid_file);
        let (pipe_r, pipe_w) = match pipe2(OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(format!("cannot make a pipe: {e}")),
        };
        let (out_w, err_w) = match pipe_w.try_clone() {
            Ok(w2) => (File::from(pipe_w), File::from(w2)),
            Err(e) => return Outcome::Failed(format!("cannot make a pipe: {e}")),
        };
        // Before the probe's pid can exist: its exit is newer.
        let since = self.reaper.mark();
        let mut cmd = self.runtime.exec(
            &self.id,
            &ExecOpts {
                process: &self.spec_file,
                pid_file: &self.pid_file,
                console_socket: None,
            },
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w));
        let spawned = self.reaper.spawn(&mut cmd);
        // Our copies of the write end close: the end of file is the probe's.
        drop(cmd);
        let (child, child_since) = match spawned {
            Ok(c) => c,
            Err(e) => {
                let bin = self.runtime.binary.display();
                return Outcome::Failed(format!("cannot run {bin}: {e}"));
            }
        };
        let child = child.id() as i32;
        match self.reaper.wait_timeout(child, child_since, START_LIMIT) {
            None => {
                let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
                let _ = self.reaper.wait_timeout(child, child_since, KILL_WAIT);
                return Outcome::Failed(format!(
                    "timed out starting health check for container {}",
                    self.id
                ));
            }
            Some(e) if e.status != 0 => {
                let why = self
                    .runtime
                    .last_error()
                    .unwrap_or_else(|| format!("exit status {}", e.status));
                return Outcome::Failed(format!("runtime exec failed: {why}"));
            }
            Some(_) => {}
        }
        let pid = match fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            Some(pid) if pid > 0 => pid,
            _ => return Outcome::Failed("the runtime wrote no pid for the probe".into()),
        };
        let outcome = self.watch(pid, since, File::from(pipe_r), timeout, stopping);
        // Whatever the probe left in its process group (it leads one: the
        // runtime makes each container process a session leader).
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        outcome
    }

    /// Reads the probe's output until it exited and the output is read (or
    /// only a process it left holds the pipe), the timeout, or a stop.
    fn watch(
        &self,
        pid: i32,
        since: u64,
        mut pipe: File,
        timeout: Duration,
        stopping: &dyn Fn() -> bool,
    ) -> Outcome {
        let deadline = Instant::now() + timeout;
        let mut out = Output::default();
        let mut buf = [0u8; 1024];
        let mut eof = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(TICK);
            let exit = if eof {
                self.reaper.wait_timeout(pid, since, step)
            } else {
                let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(step.as_millis()).unwrap_or(u16::MAX);
                if matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => eof = true,
                        Ok(n) => out.push(&buf[..n]),
                    }
                }
                self.reaper.take(pid, since)
            };
            if let Some(e) = exit {
                if !eof {
                    // Gone, yet something it started holds the pipe: what
                    // it wrote is there already.
                    out.push_available(&mut pipe, &mut buf);
                }
                return Outcome::Exited(e.status as i32, out);
            }
            if stopping() {
                self.kill(pid, since);
                return Outcome::Stopped;
            }
            if Instant::now() >= deadline {
                self.kill(pid, since);
                return Outcome::TimedOut(out);
            }
        }
    }

    /// Kills the probe and its process group and waits (bounded) for it.
    fn kill(&self, pid: i32, since: u64) {
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        if self.reaper.wait_timeout(pid, since, KILL_WAIT).is_none() {
            tracing::warn!("health probe {pid} of {} did not die", self.id);
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.spec_file);
        let _ = fs::remove_file(&self.pid_file);
    }
}

/// A probe's output as docker keeps it: the first HEALTH_OUTPUT_MAX bytes,
/// and "..." when there was more.
#[derive(Default)]
struct Output {
    kept: Vec<u8>,
    truncated: bool,
}

impl Output {
    fn push(&mut self, data: &[u8]) {
        let room = HEALTH_OUTPUT_MAX.saturating_sub(self.kept.len());
        let keep = room.min(data.len());
        self.kept.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    /// Reads what the pipe holds now (a pipe's worth at most: a process
    /// that goes on writing cannot hold us), without waiting for more.
    fn push_available(&mut self, pipe: &mut File, buf: &mut [u8]) {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                return;
            }
            match pipe.read(buf) {
                Ok(n) if n > 0 => {
                    self.push(&buf[..n]);
                    left = left.saturating_sub(n);
                }
                _ => return,
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.kept).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_forms() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(command(&v(&["CMD", "cat", "/x"])), Some(v(&["cat", "/x"])));
        assert_eq!(
            command(&v(&["CMD-SHELL", "exit 1"])),
            Some(v(&["/bin/sh", "-c", "exit 1"]))
        );
        assert_eq!(command(&v(&["NONE"])), None);
        assert_eq!(command(&v(&["CMD"])), None);
        assert_eq!(command(&v(&["WHAT", "x"])), None);
        assert_eq!(command(&[]), None);
    }

    #[test]
    fn output_keeps_the_first_bytes_and_marks_the_cut() {
        let mut o = Output::default();
        o.push(b"abc");
        assert_eq!(o.text(), "abc");
        o.push(&vec![b'x'; HEALTH_OUTPUT_MAX]);
        let t = o.text();
        assert_eq!(t.len(), HEALTH_OUTPUT_MAX + 3);
        assert!(t.starts_with("abcx") && t.ends_with("x..."));
    }
}
