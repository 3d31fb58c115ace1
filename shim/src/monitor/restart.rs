//! The restart policy applied to an exit: whether the container runs again
//! and after which back-off (docker's restart manager).

use std::path::Path;
use std::time::Duration;

use skiff_specs::monitor::{restart_delay_ms, RestartPolicy};

/// Whether the user is stopping the container: the engine writes the stop
/// marker before it signals, and a stop is never undone by the policy.
pub fn stop_requested(marker: &Path) -> bool {
    !marker.as_os_str().is_empty() && marker.symlink_metadata().is_ok()
}

/// The back-off between restarts: it grows with quick exits, and starts
/// over after a run of 10 s or more.
#[derive(Debug, Default)]
pub struct Backoff {
    previous_ms: u64,
}

impl Backoff {
    pub fn next(&mut self, ran: Duration) -> Duration {
        let ran_ms = u64::try_from(ran.as_millis()).unwrap_or(u64::MAX);
        self.previous_ms = restart_delay_ms(self.previous_ms, ran_ms);
        Duration::from_millis(self.previous_ms)
    }
}

/// Whether an exit with `code` after `restarts` restarts is followed by
/// another run.
pub fn wants_restart(policy: &RestartPolicy, marker: &Path, code: i32, restarts: u32) -> bool {
    policy.wants_restart(code, restarts) && !stop_requested(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_and_starts_over_after_a_long_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(b.next(quick)), 100);
        assert_eq!(ms(b.next(quick)), 200);
        assert_eq!(ms(b.next(quick)), 400);
        assert_eq!(ms(b.next(Duration::from_secs(10))), 100);
    }

    #[test]
    fn on_failure_counts_restarts_and_a_stop_wins() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let marker = dir.path().join("stopped");
        let p = RestartPolicy::OnFailure { max: 3 };
        let runs = (0..)
            .take_while(|&n| wants_restart(&p, &marker, 1, n))
            .count();
        assert_eq!(runs, 3);
        assert!(!wants_restart(&p, &marker, 0, 0));
        assert!(wants_restart(&RestartPolicy::Always, &marker, 0, 9));
        std::fs::write(&marker, b"")?;
        assert!(!wants_restart(&RestartPolicy::Always, &marker, 0, 0));
        // No marker configured: nothing can stop the policy but the policy.
        assert!(wants_restart(&RestartPolicy::Always, Path::new(""), 0, 0));
        Ok(())
    }
}
