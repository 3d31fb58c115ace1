//! Monitor mode: the shim as a container's monitor for `skiffctl`, set up by
//! `monitor.json` in the bundle (skiff_specs::monitor). On top of the task
//! service: the init's output as a json-file log, the state file, the
//! restart policy with docker's back-off, health checks, and the engine's
//! on-exit command once the container stopped for good. The service calls
//! in at create, start, pause/resume, kill and each exit of the init; this
//! type keeps the run's phase so that those calls, which race (an init can
//! exit before its start is recorded), leave the state file in order.

pub mod detach;
pub mod health;
pub mod log;
pub mod probe;
pub mod restart;
pub mod state;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use skiff_specs::monitor::{HealthState, MonitorConfig, Status};
use tracing::warn;

use self::health::{HealthCheck, StopFlag};
use self::log::JsonLog;
use self::probe::Probe;
use self::restart::Backoff;
use self::state::{StateFile, STARTING};
use crate::reaper::Reaper;

/// How often a back-off looks at the stop marker besides its wake-ups.
const MARKER_POLL: Duration = Duration::from_secs(1);

pub struct Monitor {
    pub config: MonitorConfig,
    log: Option<Arc<JsonLog>>,
    inner: Mutex<Inner>,
    woken: Condvar,
    /// Held while a restart replaces the runtime's container, and by a
    /// delete, so the two never interleave.
    lifecycle: Mutex<()>,
    /// An OOM kill in the cgroup during the current run.
    oom: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, not started yet.
    Created,
    /// Being started: its exit may come before the start is recorded.
    Starting,
    Running,
    /// Exited; the restart policy decides.
    Exited,
    /// Stopped for good.
    Done,
}

struct Inner {
    state: StateFile,
    phase: Phase,
    paused: bool,
    /// The current run's start.
    started: Instant,
    started_wall: SystemTime,
    backoff: Backoff,
    health: Option<HealthCheck>,
    /// A kill or delete came during a back-off: look at the marker now.
    woken: bool,
}

/// What follows an exit of the init.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterExit {
    /// No run was under way (a created init killed before its start).
    Ignore,
    Final,
    /// Restart after this back-off.
    Restart(Duration),
}

impl Monitor {
    /// The monitor of the container in `bundle`; None without monitor.json.
    pub fn load(bundle: &Path) -> anyhow::Result<Option<Arc<Self>>> {
        let config = MonitorConfig::read(bundle)
            .with_context(|| format!("cannot read {}/monitor.json", bundle.display()))?;
        let Some(config) = config else {
            return Ok(None);
        };
        let log = match &config.log {
            Some(l) => Some(
                JsonLog::open(l)
                    .with_context(|| format!("cannot open the log {}", l.path.display()))?,
            ),
            None => None,
        };
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        let state = StateFile::created(config.state.clone(), pid, has_check(&config));
        Ok(Some(Arc::new(Self {
            log,
            inner: Mutex::new(Inner {
                state,
                phase: Phase::Created,
                paused: false,
                started: Instant::now(),
                started_wall: SystemTime::now(),
                backoff: Backoff::default(),
                health: None,
                woken: false,
            }),
            woken: Condvar::new(),
            lifecycle: Mutex::new(()),
            oom: AtomicBool::new(false),
            config,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lifecycle(&self) -> MutexGuard<'_, ()> {
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the init's output goes, when the engine asked for a log.
    pub fn log(&self) -> Option<&Arc<JsonLog>> {
        self.log.as_ref()
    }

    /// The runtime created the container: the state file says so.
    pub fn created(&self) {
        self.lock().state.save();
    }

    pub fn note_oom(&self) {
        self.oom.store(true, Ordering::SeqCst);
    }

    /// A start of the init is under way (the Start RPC, or a restart).
    pub fn begin_run(&self) {
        let mut i = self.lock();
        i.phase = Phase::Starting;
        i.paused = false;
        i.started = Instant::now();
        i.started_wall = SystemTime::now();
        self.oom.store(false, Ordering::SeqCst);
    }

    /// The runtime could not start it: there is no run to watch.
    pub fn start_failed(&self) {
        let mut i = self.lock();
        if i.phase == Phase::Starting {
            i.phase = Phase::Created;
        }
    }

    /// The init runs as `pid`: Running, and the health checks begin
    /// (`probe` is only called then: a run that is over already must not
    /// touch the probe files of the next). An init that exited meanwhile
    /// stays exited.
    pub fn running(self: &Arc<Self>, pid: i32, probe: impl FnOnce() -> Option<Probe>) {
        let mut i = self.lock();
        if i.phase != Phase::Starting {
            return;
        }
        i.phase = Phase::Running;
        let at = i.started_wall;
        i.state.running(pid, at, has_check(&self.config));
        self.start_health(&mut i, probe());
    }

    fn start_health(self: &Arc<Self>, i: &mut Inner, probe: Option<Probe>) {
        let (Some(cfg), Some(probe)) = (&self.config.health, probe) else {
            return;
        };
        match HealthCheck::start(self.clone(), cfg.clone(), probe, i.started) {
            Ok(h) => i.health = Some(h),
            Err(e) => warn!("cannot start the health checks: {e}"),
        }
    }

    /// Ends the health checks before the container is frozen: a probe
    /// killed in a frozen container would not die until it thaws.
    pub fn stop_health(&self) {
        let h = self.lock().health.take();
        if let Some(h) = h {
            h.join();
        }
    }

    /// Starts the health checks of a running, unpaused container again
    /// (after a pause that failed).
    pub fn resume_health(self: &Arc<Self>, probe: impl FnOnce() -> Option<Probe>) {
        let mut i = self.lock();
        if i.phase == Phase::Running && !i.paused && i.health.is_none() {
            self.start_health(&mut i, probe());
        }
    }

    /// Paused or resumed: the state; the health checks do not run while it
    /// is paused (docker's updateHealthMonitor), `probe` is called on resume.
    pub fn paused(self: &Arc<Self>, paused: bool, probe: impl FnOnce() -> Option<Probe>) {
        {
            let mut i = self.lock();
            if i.phase != Phase::Running || i.paused == paused {
                return;
            }
            i.paused = paused;
            i.state.paused(paused);
            if !paused && i.health.is_none() {
                self.start_health(&mut i, probe());
            }
        }
        if paused {
            self.stop_health();
        }
    }

    /// The init exited with `code` (its output is in the log): the health
    /// checks end, and the state becomes Restarting or Exited.
    pub fn exited(&self, code: i32, at: SystemTime) -> AfterExit {
        let (health, ran, unrecorded) = {
            let mut i = self.lock();
            if !matches!(i.phase, Phase::Starting | Phase::Running) {
                return AfterExit::Ignore;
            }
            // Its start never made it into the state file.
            let unrecorded = i.phase == Phase::Starting;
            i.phase = Phase::Exited;
            let h = i.health.take();
            if let Some(h) = &h {
                h.signal();
            }
            (h, i.started.elapsed(), unrecorded)
        };
        // No probe result after the exit.
        if let Some(h) = health {
            h.join();
        }
        let mut i = self.lock();
        let restarts = i.state.get().restart_count;
        let marker = &self.config.stop_marker;
        let again = restart::wants_restart(&self.config.restart, marker, code, restarts);
        let oom = self.oom.load(Ordering::SeqCst);
        let started = unrecorded.then_some(i.started_wall);
        i.state.stopped(code, at, oom, started, again);
        if again {
            AfterExit::Restart(i.backoff.next(ran))
        } else {
            i.phase = Phase::Done;
            AfterExit::Final
        }
    }

    /// Waits out a restart's back-off; false when `cancelled` (looked at on
    /// each wake-up and every second) says the container is stopped.
    pub fn wait_backoff(&self, delay: Duration, cancelled: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            if cancelled() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            let i = self.lock();
            let (mut i, _) = self
                .woken
                .wait_timeout_while(i, left.min(MARKER_POLL), |i| !i.woken)
                .unwrap_or_else(|p| p.into_inner());
            i.woken = false;
        }
    }

    /// A kill or delete of the container: a back-off looks at it now.
    pub fn wake(&self) {
        self.lock().woken = true;
        self.woken.notify_all();
    }

    pub fn stop_requested(&self) -> bool {
        restart::stop_requested(&self.config.stop_marker)
    }

    /// Stopped for good: Exited (with `error` when a restart failed).
    pub fn finished(&self, error: Option<String>) {
        let mut i = self.lock();
        i.phase = Phase::Done;
        if error.is_some() || i.state.get().status != Status::Exited {
            i.state.exited(error);
        }
    }

    /// Never started (a created container the engine deletes).
    pub fn never_started(&self) -> bool {
        self.lock().phase == Phase::Created
    }

    /// Starts the engine's on-exit command, detached.
    pub fn run_on_exit(&self, reaper: &Reaper) {
        if let Err(e) = detach::spawn_detached(&self.config.on_exit, reaper) {
            warn!("{e:#}");
        }
    }

    fn health_starting(&self) -> bool {
        let i = self.lock();
        let h = i.state.get().health.as_ref();
        h.is_none_or(|h| h.status == STARTING)
    }

    /// Records a probe's result, unless the checks were stopped meanwhile.
    fn record_health(&self, stop: &StopFlag, f: impl FnOnce(&mut HealthState)) {
        let mut i = self.lock();
        if stop.is_set() {
            return;
        }
        i.state.health(f);
    }
}

/// Whether the config has a health check that runs something.
fn has_check(config: &MonitorConfig) -> bool {
    config
        .health
        .as_ref()
        .and_then(|h| probe::command(&h.test))
        .is_some()
}
