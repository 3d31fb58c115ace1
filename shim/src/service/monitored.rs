//! The service's side of monitor mode: starting an init (also again, for a
//! restart), and what follows a monitored init's exit once its output is in
//! the log: the restart policy's back-off and a new run from the same
//! bundle, or the end (state Exited, the runtime's container deleted, the
//! container forgotten, the on-exit command, and the shim's exit when it
//! serves nothing else).

use super::*;
use crate::monitor::probe::{self, Probe};
use crate::monitor::AfterExit;

impl Service {
    /// Starts a created init: `runtime start`, Running, TaskStart; for a
    /// monitored container also its state and health checks.
    pub(super) fn start_init(&self, c: &Arc<Container>, p: &Arc<Process>) -> anyhow::Result<i32> {
        let monitor = c.monitor.as_ref();
        if let Some(m) = monitor {
            m.begin_run();
        }
        if let Err(e) = self.run(&c.runtime, c.runtime.start(&c.id), None) {
            if let Some(m) = monitor {
                m.start_failed();
            }
            return Err(e);
        }
        {
            let mut st = p.lock();
            if st.exit.is_none() {
                st.status = Status::Running;
            }
        }
        self.report_start(c, p, |pid| {
            self.events.publish(
                TASK_START_EVENT_TOPIC,
                &TaskStart {
                    container_id: c.id.clone(),
                    pid: pid as u32,
                    ..Default::default()
                },
            )
        });
        let pid = p.pid();
        if let Some(m) = monitor {
            m.running(pid, || self.probe(c));
        }
        Ok(pid)
    }

    /// The container's health probe, if it has a check.
    pub(super) fn probe(&self, c: &Container) -> Option<Probe> {
        let test = &c.monitor.as_ref()?.config.health.as_ref()?.test;
        let argv = probe::command(test)?;
        let rt = c.runtime.clone();
        match Probe::new(self.reaper.clone(), rt, &c.id, &c.bundle, argv) {
            Ok(p) => Some(p),
            Err(e) => {
                warn!("no health checks for {}: {e:#}", c.id);
                None
            }
        }
    }

    /// After the exit of a monitored container's init `p` was recorded.
    /// Runs in the exit's own thread: the back-off may take a minute.
    pub(super) fn monitored_exit(
        &self,
        c: &Arc<Container>,
        p: &Arc<Process>,
        status: u32,
        at: SystemTime,
    ) {
        let Some(m) = c.monitor.clone() else {
            return;
        };
        if !Arc::ptr_eq(&c.init(), p) {
            return;
        }
        let code = i32::try_from(status).unwrap_or(i32::MAX);
        let delay = match m.exited(code, at) {
            AfterExit::Ignore => return,
            AfterExit::Final => return self.finish(c, &m, None),
            AfterExit::Restart(delay) => delay,
        };
        debug!(container = %c.id, ?delay, "restarting");
        let cancelled = || m.stop_requested() || !self.is_current(c);
        if !m.wait_backoff(delay, cancelled) {
            return self.finish(c, &m, None);
        }
        match self.restart(c, &m) {
            Ok(true) => {}
            Ok(false) => self.finish(c, &m, None),
            Err(e) => {
                warn!("cannot restart {}: {e:#}", c.id);
                self.finish(c, &m, Some(format!("{e:#}")));
            }
        }
    }

    /// Runs the container again from its bundle: the stopped one deleted in
    /// the runtime, created and started anew with the same stdin FIFO and
    /// log. False when the user stopped it (or the engine deleted it) first.
    fn restart(&self, c: &Arc<Container>, m: &Monitor) -> anyhow::Result<bool> {
        let _restart = m.lifecycle();
        // The stop may have come at the end of the back-off.
        if m.stop_requested() || !self.is_current(c) {
            return Ok(false);
        }
        let old = c.init();
        if let Some(oom) = c.oom() {
            oom.stop();
        }
        if let Some(io) = old.io() {
            // Its copiers are done; its stdin copier must give the FIFO up.
            io.finish(Duration::ZERO);
        }
        self.run(&c.runtime, c.runtime.delete(&c.id, true), None)?;
        let opts = Options::load(&c.bundle)?;
        let paths = old.paths.clone();
        let rt = &c.runtime;
        let (init, pid) = self.create_init(&c.id, rt, &opts, &c.bundle, paths, m.log())?;
        c.set_init(init.clone());
        self.watch_oom(c);
        // Gone already (on_exit could not match it before it was the init).
        let since = init.lock().since;
        if let Some(e) = self.reaper.take(pid, since) {
            self.exit_after_output(c, &init, e.status, e.at);
        }
        // A stop that came while it was being created: it never runs.
        if m.stop_requested() {
            return Ok(false);
        }
        self.start_init(c, &init)?;
        Ok(true)
    }

    /// The container stopped for good.
    fn finish(&self, c: &Arc<Container>, m: &Monitor, error: Option<String>) {
        m.finished(error);
        if self.is_current(c) {
            if let Err(e) = self.delete_init(c) {
                warn!("cannot delete {}: {e}", c.id);
                self.forget(c);
            }
        }
        m.run_on_exit(&self.reaper);
        self.shutdown_if_idle();
    }
}
