//! The container's state file, written atomically on every change: what
//! `skiffctl ps`, `inspect` and `wait` read. Each transition sets the fields
//! docker's container state sets for it.

use std::path::PathBuf;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use skiff_specs::jsonlog::format_time;
use skiff_specs::monitor::{HealthState, MonitorState, Status};
use tracing::warn;

/// docker's health states.
pub const STARTING: &str = "starting";

/// RFC 3339 in UTC with nanoseconds.
pub fn rfc3339(t: SystemTime) -> String {
    format_time(DateTime::<Utc>::from(t))
}

pub struct StateFile {
    path: PathBuf,
    state: MonitorState,
}

impl StateFile {
    /// A created container's state, kept from what the file held (the last
    /// run's exit and health log, as docker keeps them until the next start).
    /// Written by `save` once the container exists.
    pub fn created(path: PathBuf, monitor_pid: i32, health: bool) -> Self {
        let old = MonitorState::read(&path).unwrap_or_default();
        let state = MonitorState {
            status: Status::Created,
            pid: 0,
            restart_count: 0,
            error: String::new(),
            monitor_pid,
            health: if health { old.health.clone() } else { None },
            ..old
        };
        Self { path, state }
    }

    pub fn get(&self) -> &MonitorState {
        &self.state
    }

    pub fn save(&self) {
        if let Err(e) = self.state.write(&self.path) {
            warn!("cannot write the state file {}: {e}", self.path.display());
        }
    }

    /// Running (again): docker's SetRunning clears the last exit code, the
    /// error and the OOM flag; a health check starts over as "starting".
    pub fn running(&mut self, pid: i32, started_at: SystemTime, health: bool) {
        let s = &mut self.state;
        s.status = Status::Running;
        s.pid = pid;
        s.started_at = rfc3339(started_at);
        s.exit_code = 0;
        s.error.clear();
        s.oom_killed = false;
        if health {
            let h = s.health.get_or_insert_with(HealthState::default);
            h.status = STARTING.to_string();
            h.failing_streak = 0;
        }
        self.save();
    }

    pub fn paused(&mut self, paused: bool) {
        self.state.status = if paused {
            Status::Paused
        } else {
            Status::Running
        };
        self.save();
    }

    /// The init exited: Restarting (one more restart counted, as docker
    /// counts them when it decides to restart) or Exited. `started_at`: the
    /// run's start, when it exited before `running` recorded it.
    pub fn stopped(
        &mut self,
        code: i32,
        at: SystemTime,
        oom_killed: bool,
        started_at: Option<SystemTime>,
        restarting: bool,
    ) {
        let s = &mut self.state;
        if let Some(t) = started_at {
            s.started_at = rfc3339(t);
        }
        s.status = if restarting {
            s.restart_count += 1;
            Status::Restarting
        } else {
            Status::Exited
        };
        s.pid = 0;
        s.exit_code = code;
        s.finished_at = rfc3339(at);
        s.oom_killed = oom_killed;
        self.save();
    }

    /// Stopped for good after a restart that was cancelled or failed
    /// (`error`): the last exit stays.
    pub fn exited(&mut self, error: Option<String>) {
        self.state.status = Status::Exited;
        self.state.pid = 0;
        if let Some(e) = error {
            self.state.error = e;
        }
        self.save();
    }

    pub fn health(&mut self, f: impl FnOnce(&mut HealthState)) {
        f(self.state.health.get_or_insert_with(HealthState::default));
        self.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn transitions_set_what_docker_sets() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        let old = MonitorState {
            status: Status::Exited,
            exit_code: 3,
            restart_count: 4,
            finished_at: "then".into(),
            ..Default::default()
        };
        old.write(&path)?;
        let mut f = StateFile::created(path.clone(), 42, false);
        f.save();
        let read = || MonitorState::read(&path);
        let st = read()?;
        assert_eq!(
            (st.status, st.monitor_pid, st.restart_count),
            (Status::Created, 42, 0)
        );
        assert_eq!((st.exit_code, st.finished_at.as_str()), (3, "then"));

        let t0 = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_500_000_001);
        f.running(7, t0, true);
        let st = read()?;
        assert_eq!((st.status, st.pid, st.exit_code), (Status::Running, 7, 0));
        assert_eq!(st.started_at, "1970-01-01T00:00:01.500000001Z");
        assert_eq!(st.health.map(|h| h.status), Some("starting".into()));

        f.stopped(137, t0, true, None, true);
        let st = read()?;
        assert_eq!(
            (st.status, st.pid, st.restart_count),
            (Status::Restarting, 0, 1)
        );
        assert!(st.oom_killed && st.exit_code == 137);
        f.exited(Some("cannot restart".into()));
        let st = read()?;
        assert_eq!((st.status, st.exit_code), (Status::Exited, 137));
        assert_eq!((st.restart_count, st.error.as_str()), (1, "cannot restart"));
        Ok(())
    }
}
