//! A container's status as docker reports it, from the monitor's state file
//! and whether the monitor is still alive (one that was killed, or a machine
//! that rebooted, leaves a state that says "running" for a container that is
//! not: it reads as exited).

use chrono::{DateTime, Utc};
use skiff_specs::monitor::{MonitorState, Status};

use super::ContainerDir;

/// The state file, corrected for a monitor that is gone.
pub fn current(dir: &ContainerDir) -> MonitorState {
    let mut st = MonitorState::read(&dir.state()).unwrap_or_else(|e| MonitorState {
        status: Status::Exited,
        error: format!("unreadable state: {e}"),
        ..Default::default()
    });
    let live = matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    if live && !alive(st.monitor_pid) {
        st.status = Status::Exited;
        st.pid = 0;
        if st.exit_code == 0 {
            st.exit_code = 255;
        }
        if st.finished_at.is_empty() {
            st.finished_at = skiff_specs::jsonlog::format_time(Utc::now());
        }
        st.error = "the container's monitor is gone".to_owned();
    }
    st
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Whether the container counts as running for `ps` (up or restarting).
pub fn is_running(st: &MonitorState) -> bool {
    matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    )
}

/// `ps`'s STATUS column: "Up 5 seconds (healthy)", "Exited (0) 2 minutes ago".
pub fn describe(st: &MonitorState, now: DateTime<Utc>) -> String {
    let since = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| human_duration(now.signed_duration_since(t.with_timezone(&Utc))))
            .unwrap_or_default()
    };
    let health = st
        .health
        .as_ref()
        .map(|h| match h.status.as_str() {
            "starting" => " (health: starting)".to_owned(),
            s => format!(" ({s})"),
        })
        .unwrap_or_default();
    match st.status {
        Status::Created => "Created".to_owned(),
        Status::Running => format!("Up {}{health}", since(&st.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", st.exit_code, since(&st.finished_at)),
    }
}

/// docker's HumanDuration.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        _ if mins == 1 => "About a minute".to_owned(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if days < 14 => format!("{days} days"),
        _ if days < 90 => format!("{} weeks", days / 7),
        _ if days < 730 => format!("{} months", days / 30),
        _ => format!("{} years", days / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_docker_says_them() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(0)), "Less than a second");
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(59)), "59 seconds");
        assert_eq!(human_duration(d(61)), "About a minute");
        assert_eq!(human_duration(d(600)), "10 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(5 * 3600)), "5 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
    }

    #[test]
    fn status_column() {
        let now = Utc::now();
        let t = skiff_specs::jsonlog::format_time(now - chrono::Duration::seconds(5));
        let st = MonitorState {
            status: Status::Exited,
            exit_code: 3,
            finished_at: t.clone(),
            ..Default::default()
        };
        assert_eq!(describe(&st, now), "Exited (3) 5 seconds ago");
        let st = MonitorState {
            status: Status::Running,
            started_at: t,
            health: Some(skiff_specs::monitor::HealthState {
                status: "healthy".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(describe(&st, now), "Up 5 seconds (healthy)");
    }
}
