//! `stop`: the stop signal, up to the grace period for the container to
//! exit, then SIGKILL; the restart policy never undoes it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use skiff_specs::monitor::MonitorState;

use crate::container::record::Container;
use crate::container::{status, ContainerDir};
use crate::engine::Engine;

/// docker's default grace period.
pub const DEFAULT_TIMEOUT: u64 = 10;

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow::anyhow!("invalid signal: {s}"))
}

/// Stops `c` (locked by the caller) and tears down what its start set up.
pub fn stop(engine: &Engine, c: &mut Container, timeout: Option<u64>) -> Result<()> {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    if status::is_running(&st) {
        std::fs::write(dir.stop_marker(), b"")
            .with_context(|| format!("cannot write {}", dir.stop_marker().display()))?;
        let signal = parse_signal(c.config.stop_signal.as_deref().unwrap_or("SIGTERM"))?;
        let grace =
            Duration::from_secs(timeout.or(c.config.stop_timeout).unwrap_or(DEFAULT_TIMEOUT));
        let monitor = engine.monitor.connect(&dir.bundle(), &c.id);
        if let Ok(m) = &monitor {
            // A paused container cannot act on a signal until it thaws.
            if st.status == skiff_specs::monitor::Status::Paused {
                let _ = m.resume();
            }
            let _ = m.kill("", signal as u32, false);
        }
        if wait_exit(&dir, Some(grace)).is_none() {
            if let Ok(m) = &monitor {
                let _ = m.kill("", libc::SIGKILL as u32, true);
            }
            if wait_exit(&dir, Some(Duration::from_secs(30))).is_none() {
                bail!("container {} did not exit after SIGKILL", c.name);
            }
        }
    }
    super::teardown(engine, c)
}

/// Waits (up to `limit`) for the container to be stopped for good: exited
/// and not about to restart. Returns its final state.
pub fn wait_exit(dir: &ContainerDir, limit: Option<Duration>) -> Option<MonitorState> {
    let deadline = limit.map(|l| Instant::now() + l);
    let mut pause = Duration::from_millis(2);
    loop {
        let st = status::current(dir);
        if !status::is_running(&st) {
            return Some(st);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() -> Result<()> {
        assert_eq!(parse_signal("TERM")?, libc::SIGTERM);
        assert_eq!(parse_signal("sigkill")?, libc::SIGKILL);
        assert_eq!(parse_signal("9")?, 9);
        assert!(parse_signal("FROB").is_err());
        assert!(parse_signal("0").is_err());
        Ok(())
    }
}
