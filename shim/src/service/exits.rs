//! Exits: matching a reaped pid with a process, and TaskExit after the start.

use super::*;

impl Service {
    /// Matches a reaped exit with a container process (the reaper keeps the
    /// others for the runtime commands waiting on them).
    pub(crate) fn on_exit(self: &Arc<Self>, exit: Exit) {
        let containers: Vec<Arc<Container>> = self.containers().values().cloned().collect();
        for c in containers {
            for p in c.processes() {
                let since = {
                    let st = p.lock();
                    if st.pid != exit.pid || st.exit.is_some() {
                        continue;
                    }
                    st.since
                };
                if let Some(e) = self.reaper.take(exit.pid, since) {
                    // The exit is reported once the output is passed on (so
                    // a client that stops reading at the exit has it all);
                    // that wait must not hold up the reaper.
                    let me = self.clone();
                    let (c2, p2) = (c.clone(), p.clone());
                    let spawned = std::thread::Builder::new()
                        .name("exit".into())
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            if p.exec_id.is_empty() && c.kill_all_on_exit {
                                // Without its own pid namespace the container's
                                // other processes outlive the init.
                                let rt = &c.runtime;
                                if let Err(err) = me.run(rt, rt.kill(&c.id, 9, true), None) {
                                    warn!("cannot kill what is left of {}: {err:#}", c.id);
                                }
                            }
                            if let Some(io) = p.io() {
                                io.wait_output(OUTPUT_WAIT);
                            }
                            me.exited(&c, &p, e.status, e.at);
                        });
                    if let Err(err) = spawned {
                        warn!("cannot start an exit thread: {err}");
                        self.exited(&c2, &p2, e.status, e.at);
                    }
                }
                return;
            }
        }
    }

    /// Records an exit; publishes TaskExit unless the start is not reported yet.
    pub(super) fn exited(&self, c: &Container, p: &Process, status: u32, at: SystemTime) {
        if p.exec_id.is_empty() {
            // A kill the OOM thread has not reported yet goes out before TaskExit.
            if let Some(o) = c.oom.get() {
                o.check();
            }
        }
        let mut st = p.lock();
        if p.set_exited(&mut st, status, at) {
            self.publish_exit(c, p, st.pid, status, at);
        }
        debug!(container = %c.id, exec = %p.exec_id, status, "exited");
    }

    pub(super) fn publish_exit(
        &self,
        c: &Container,
        p: &Process,
        pid: i32,
        status: u32,
        at: SystemTime,
    ) {
        let id = if p.exec_id.is_empty() {
            c.id.clone()
        } else {
            p.exec_id.clone()
        };
        self.events.publish(
            TASK_EXIT_EVENT_TOPIC,
            &TaskExit {
                container_id: c.id.clone(),
                id,
                pid: pid as u32,
                exit_status: status,
                exited_at: Some(timestamp(at)).into(),
                ..Default::default()
            },
        );
    }

    /// Marks the start reported (publishing `start_event` under the process
    /// lock so no TaskExit can overtake it), then a pending exit.
    pub(super) fn report_start(&self, c: &Container, p: &Process, start_event: impl FnOnce(i32)) {
        let mut st = p.lock();
        st.start_reported = true;
        start_event(st.pid);
        if st.exit_pending {
            st.exit_pending = false;
            if let Some(e) = st.exit {
                self.publish_exit(c, p, st.pid, e.status, e.at);
            }
        }
    }
}
