//! Health checks as docker runs them (daemon/health.go): a thread per
//! running container probes every interval (every start interval while the
//! container is in its start period and not yet healthy), the next probe
//! an interval after the last one ended; each result goes into the last
//! five of the log; a success makes the container healthy and resets the
//! failing streak; a failure counts, except while it is starting and in its
//! start period, and `retries` failures in a row make it unhealthy. The
//! thread ends, killing a running probe, when the container stops or pauses.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use skiff_specs::monitor::{HealthConfig, HealthResult, HealthState, HEALTH_LOG_LEN};

use super::probe::Probe;
use super::state::STARTING;
use super::Monitor;

pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// Probes run runtime commands and format JSON: more than a copier's stack.
const STACK: usize = 128 * 1024;

/// docker's timeoutWithDefault: zero means the default.
fn or_default(ns: u64, default: u64) -> Duration {
    Duration::from_nanos(if ns == 0 { default } else { ns })
}

pub fn interval(cfg: &HealthConfig) -> Duration {
    or_default(cfg.interval_ns, HealthConfig::DEFAULT_INTERVAL_NS)
}

pub fn timeout(cfg: &HealthConfig) -> Duration {
    or_default(cfg.timeout_ns, HealthConfig::DEFAULT_TIMEOUT_NS)
}

/// The wait before the next probe, `since_start` into the run.
pub fn next_interval(cfg: &HealthConfig, since_start: Duration, starting: bool) -> Duration {
    let in_start_period = since_start < Duration::from_nanos(cfg.start_period_ns);
    if in_start_period && starting && cfg.start_interval_ns != 0 {
        Duration::from_nanos(cfg.start_interval_ns)
    } else {
        interval(cfg)
    }
}

/// docker's handleProbeResult. `in_start_period`: the probe started within
/// the start period of the run.
pub fn record(h: &mut HealthState, result: HealthResult, in_start_period: bool, retries: u32) {
    let healthy = result.exit_code == 0;
    h.log.push(result);
    if h.log.len() > HEALTH_LOG_LEN {
        let extra = h.log.len() - HEALTH_LOG_LEN;
        h.log.drain(..extra);
    }
    let retries = if retries == 0 {
        HealthConfig::DEFAULT_RETRIES
    } else {
        retries
    };
    if healthy {
        h.failing_streak = 0;
        h.status = HEALTHY.to_string();
    } else if !(h.status == STARTING && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = UNHEALTHY.to_string();
        }
    }
}

/// A duration as Go prints one (`30s`, `1.5s`, `500ms`, `1m30s`), for
/// docker's "Health check exceeded timeout (…)".
pub fn go_duration(d: Duration) -> String {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    fn decimal(v: u64, unit: u64, digits: usize) -> String {
        let (whole, rest) = (v / unit, v % unit);
        if rest == 0 {
            return whole.to_string();
        }
        let frac = format!("{rest:0digits$}");
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }
    match ns {
        0 => "0s".to_string(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{}µs", decimal(ns, 1_000, 3)),
        1_000_000..=999_999_999 => format!("{}ms", decimal(ns, 1_000_000, 6)),
        _ => {
            let secs = ns / 1_000_000_000;
            let (h, m) = (secs / 3600, secs / 60 % 60);
            let s = decimal(ns % 60_000_000_000, 1_000_000_000, 9);
            match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, _) => format!("{m}m{s}s"),
                _ => format!("{h}h{m}m{s}s"),
            }
        }
    }
}

/// Set when the checks must end.
#[derive(Default)]
pub struct StopFlag {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopFlag {
    fn set(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `limit`; true if stopped meanwhile.
    fn wait(&self, limit: Duration) -> bool {
        let st = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (st, _) = self
            .cond
            .wait_timeout_while(st, limit, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *st
    }
}

/// The health-check thread of one container run.
pub struct HealthCheck {
    stop: Arc<StopFlag>,
    thread: Option<JoinHandle<()>>,
}

impl HealthCheck {
    /// Starts probing; `started`: when the run started (its start period's
    /// beginning).
    pub fn start(
        monitor: Arc<Monitor>,
        cfg: HealthConfig,
        probe: Probe,
        started: Instant,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(StopFlag::default());
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("health".into())
            .stack_size(STACK)
            .spawn(move || checks(&monitor, &cfg, &probe, started, &flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to end; no result is recorded after this.
    pub fn signal(&self) {
        self.stop.set();
    }

    /// Waits for the thread (and a probe it had running) to end.
    pub fn join(mut self) {
        self.stop.set();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn checks(m: &Monitor, cfg: &HealthConfig, probe: &Probe, started: Instant, stop: &StopFlag) {
    let start_period = Duration::from_nanos(cfg.start_period_ns);
    loop {
        let wait = next_interval(cfg, started.elapsed(), m.health_starting());
        if stop.wait(wait) {
            return;
        }
        let probe_start = Instant::now();
        let Some(result) = probe.run(timeout(cfg), &|| stop.is_set()) else {
            return;
        };
        let in_start_period = probe_start.duration_since(started) < start_period;
        m.record_health(stop, |h| record(h, result, in_start_period, cfg.retries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            exit_code: code,
            output: format!("exit {code}"),
            ..Default::default()
        }
    }

    fn starting() -> HealthState {
        HealthState {
            status: STARTING.into(),
            ..Default::default()
        }
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_healthy() {
        let mut h = starting();
        for _ in 0..4 {
            record(&mut h, result(1), true, 2);
        }
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        record(&mut h, result(0), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Healthy once: failures count even in the start period.
        record(&mut h, result(1), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        record(&mut h, result(2), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        assert_eq!(h.log.len(), HEALTH_LOG_LEN);
        assert_eq!(h.log.last().map(|r| r.exit_code), Some(2));
        record(&mut h, result(0), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
    }

    #[test]
    fn retries_after_the_start_period() {
        let mut h = starting();
        record(&mut h, result(1), false, 0);
        record(&mut h, result(1), false, 0);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 2));
        record(&mut h, result(-1), false, 0);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 3));
    }

    #[test]
    fn intervals() {
        let s = Duration::from_secs;
        let cfg = HealthConfig {
            interval_ns: 10_000_000_000,
            start_period_ns: 60_000_000_000,
            start_interval_ns: 1_000_000_000,
            ..Default::default()
        };
        assert_eq!(next_interval(&cfg, s(5), true), s(1));
        assert_eq!(next_interval(&cfg, s(5), false), s(10));
        assert_eq!(next_interval(&cfg, s(60), true), s(10));
        let no_start_interval = HealthConfig {
            start_interval_ns: 0,
            ..cfg.clone()
        };
        assert_eq!(next_interval(&no_start_interval, s(5), true), s(10));
        assert_eq!(interval(&HealthConfig::default()), s(30));
        assert_eq!(timeout(&HealthConfig::default()), s(30));
    }

    #[test]
    fn durations_print_as_in_go() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(12)), "12ns");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration(ms(500)), "500ms");
        assert_eq!(go_duration(Duration::from_micros(1250)), "1.25ms");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(30_000)), "30s");
        assert_eq!(go_duration(ms(90_000)), "1m30s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
        assert_eq!(go_duration(ms(3_661_500)), "1h1m1.5s");
    }
}
