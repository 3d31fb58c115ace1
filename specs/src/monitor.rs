//! The contract between `skiffctl` and the container monitor
//! (`containerd-shim-skiff-v2` run by the engine instead of containerd).
//!
//! The engine writes a [`MonitorConfig`] as `monitor.json` in the container's
//! bundle before it asks the shim to create the task; the shim reads it and
//! then also writes the container's output as a docker json-file log,
//! records the container's life in a [`MonitorState`] file (atomically, on
//! every change), runs the health check and applies the restart policy. The
//! engine reads the state file for `ps`, `inspect`, `wait` and `logs`.
//! Without `monitor.json` the shim behaves as containerd's shim.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of the monitor's configuration in the bundle.
pub const CONFIG_FILE: &str = "monitor.json";

/// Annotation on the runtime spec that groups containers into one monitor
/// process (containers with the same value share a shim).
pub const GROUP_ANNOTATION: &str = "io.skiff.monitor.group";

/// What the engine asks of the monitor for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// Where the monitor keeps the container's [`MonitorState`].
    pub state: PathBuf,
    /// The container's output as a json-file log; None: output goes where
    /// the task's stdio says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// While this file exists the container is being stopped by the user:
    /// its exit is final, whatever the restart policy says (docker's
    /// "stop is never undone by the policy").
    pub stop_marker: PathBuf,
    /// A command the monitor starts, detached (its own session, not
    /// waited for), once the container has stopped for good (the state file
    /// already says so): the engine's cleanup of what it set up around the
    /// container (network, rootfs mount; `--rm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_exit: Vec<String>,
}

/// docker's json-file log driver options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file reaches this many bytes; 0: never.
    #[serde(default)]
    pub max_size: u64,
    /// How many files to keep, the current one included (at least 1).
    #[serde(default = "one")]
    pub max_file: u32,
}

fn one() -> u32 {
    1
}

/// A health check, docker's HEALTHCHECK with durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// The command: `["CMD", prog, args...]` runs it directly,
    /// `["CMD-SHELL", script]` runs `/bin/sh -c script`.
    pub test: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    /// How often to probe during the start period (docker 25's
    /// start_interval); 0: `interval_ns`.
    #[serde(default)]
    pub start_interval_ns: u64,
    pub retries: u32,
}

impl HealthConfig {
    /// docker's defaults: 30 s interval and timeout, 3 retries, no start period.
    pub const DEFAULT_INTERVAL_NS: u64 = 30_000_000_000;
    pub const DEFAULT_TIMEOUT_NS: u64 = 30_000_000_000;
    pub const DEFAULT_RETRIES: u32 = 3;
}

/// docker's restart policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        #[serde(default)]
        max: u32,
    },
}

impl RestartPolicy {
    /// Parses docker's `--restart` value: no, always, unless-stopped,
    /// on-failure[:N].
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None => match s {
                "no" | "" => Ok(Self::No),
                "always" => Ok(Self::Always),
                "unless-stopped" => Ok(Self::UnlessStopped),
                "on-failure" => Ok(Self::OnFailure { max: 0 }),
                _ => Err(format!("invalid restart policy {s:?}")),
            },
            Some(("on-failure", n)) => n
                .parse()
                .map(|max| Self::OnFailure { max })
                .map_err(|_| format!("invalid restart count {n:?} in {s:?}")),
            Some(_) => Err(format!(
                "invalid restart policy {s:?}: only on-failure takes a count"
            )),
        }
    }

    /// docker's name for it, as `inspect` shows (`HostConfig.RestartPolicy`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure { .. } => "on-failure",
        }
    }

    /// Whether a container that exited with `code` after `restarts`
    /// restarts is started again (a user's stop is checked separately).
    pub fn wants_restart(&self, code: i32, restarts: u32) -> bool {
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max } => code != 0 && (*max == 0 || restarts < *max),
        }
    }
}

/// docker's restart back-off: 100 ms doubling up to a minute; a container
/// that ran for 10 s or more starts again from 100 ms.
pub fn restart_delay_ms(previous_ms: u64, ran_ms: u64) -> u64 {
    const FIRST: u64 = 100;
    const MAX: u64 = 60_000;
    const RESET_AFTER: u64 = 10_000;
    if previous_ms == 0 || ran_ms >= RESET_AFTER {
        FIRST
    } else {
        (previous_ms * 2).min(MAX)
    }
}

/// The container's life as the monitor records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    pub status: Status,
    /// The init's host pid while running; 0 otherwise.
    #[serde(default)]
    pub pid: i32,
    /// The last exit code (128+N after signal N).
    #[serde(default)]
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds; empty before the first start / exit.
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub restart_count: u32,
    /// Why the monitor could not (re)start the container, if it could not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthState>,
    /// The monitor (shim) process's pid, so the engine can tell a live
    /// monitor from one that was killed.
    #[serde(default)]
    pub monitor_pid: i32,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    /// Exited, waiting for the restart policy's back-off.
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
        }
    }
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    /// starting, healthy or unhealthy.
    pub status: String,
    pub failing_streak: u32,
    /// The last results, oldest first (docker keeps 5).
    pub log: Vec<HealthResult>,
}

/// How many results `HealthState::log` keeps.
pub const HEALTH_LOG_LEN: usize = 5;
/// How much of a probe's output is kept (docker: 4 KiB).
pub const HEALTH_OUTPUT_MAX: usize = 4096;

/// One health probe, as docker's inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

impl MonitorState {
    /// Reads a state file; a missing file is a created container's state.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the state atomically (a temp file renamed over it).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(
            path,
            &serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )
    }
}

impl MonitorConfig {
    pub fn read(bundle: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(bundle.join(CONFIG_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn write(&self, bundle: &Path) -> std::io::Result<()> {
        write_atomic(
            &bundle.join(CONFIG_FILE),
            &serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )
    }
}

/// Writes `bytes` to `path` through a temp file in the same directory and a
/// rename, so a reader sees the old or the new content, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(RestartPolicy::parse("no"), Ok(RestartPolicy::No));
        assert_eq!(
            RestartPolicy::parse("on-failure:3"),
            Ok(RestartPolicy::OnFailure { max: 3 })
        );
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        assert!(RestartPolicy::parse("always:2").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
        let p = RestartPolicy::OnFailure { max: 3 };
        assert!(p.wants_restart(1, 0) && p.wants_restart(1, 2));
        assert!(!p.wants_restart(1, 3) && !p.wants_restart(0, 0));
        assert!(RestartPolicy::Always.wants_restart(0, 100));
        assert!(!RestartPolicy::No.wants_restart(1, 0));
    }

    #[test]
    fn back_off_doubles_and_resets() {
        assert_eq!(restart_delay_ms(0, 0), 100);
        assert_eq!(restart_delay_ms(100, 50), 200);
        assert_eq!(restart_delay_ms(40_000, 50), 60_000);
        assert_eq!(restart_delay_ms(60_000, 50), 60_000);
        assert_eq!(restart_delay_ms(6_400, 10_000), 100);
    }

    #[test]
    fn policy_json_round_trips() -> Result<(), serde_json::Error> {
        let p = RestartPolicy::OnFailure { max: 2 };
        let text = serde_json::to_string(&p)?;
        assert_eq!(text, r#"{"name":"on-failure","max":2}"#);
        assert_eq!(serde_json::from_str::<RestartPolicy>(&text)?, p);
        assert_eq!(
            serde_json::from_str::<RestartPolicy>(r#"{"name":"no"}"#)?,
            RestartPolicy::No
        );
        Ok(())
    }

    #[test]
    fn state_files() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        assert_eq!(MonitorState::read(&path)?.status, Status::Created);
        let s = MonitorState {
            status: Status::Exited,
            exit_code: 3,
            ..Default::default()
        };
        s.write(&path)?;
        assert_eq!(MonitorState::read(&path)?, s);
        Ok(())
    }
}
