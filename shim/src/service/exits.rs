//! Exits: matching a reaped pid with a process, recording the exit once the
//! process's output is passed on, and TaskExit after the start.

use super::*;

impl Service {
    /// Matches a reaped exit with a container process (the reaper keeps the
    /// others for the runtime commands waiting on them).
    pub(crate) fn on_exit(&self, exit: Exit) {
        let containers: Vec<Arc<Container>> = self.containers().values().cloned().collect();
        for c in containers {
            for p in c.processes() {
                let since = {
                    let st = p.lock();
                    if st.pid != exit.pid || st.exit.is_some() || st.reaped {
                        continue;
                    }
                    st.since
                };
                if let Some(e) = self.reaper.take(exit.pid, since) {
                    self.exit_after_output(&c, &p, e.status, e.at);
                }
                return;
            }
        }
    }

    /// The one way a reaped exit of a container process is recorded, for
    /// inits and execs, tty or not, wherever it was taken from the reaper:
    /// once the output the process wrote is passed on and read (a client may
    /// stop reading at the exit). In a thread of its own: that wait must
    /// hold up neither the reaper nor an RPC.
    pub(super) fn exit_after_output(
        &self,
        c: &Arc<Container>,
        p: &Arc<Process>,
        status: u32,
        at: SystemTime,
    ) {
        p.lock().reaped = true;
        let Some(me) = self.me.upgrade() else {
            // The service is going away: no thread to hand it to.
            self.output_then_exited(c, p, status, at);
            return;
        };
        let (c2, p2) = (c.clone(), p.clone());
        let monitored = c.monitor.is_some() && p.exec_id.is_empty();
        // A monitored init's exit may go on to restart the container.
        let stack = if monitored { 256 } else { 64 } * 1024;
        let spawned = std::thread::Builder::new()
            .name("exit".into())
            .stack_size(stack)
            .spawn(move || {
                if p2.exec_id.is_empty() && c2.kill_all_on_exit {
                    // Without its own pid namespace the container's other
                    // processes outlive the init.
                    let rt = &c2.runtime;
                    if let Err(err) = me.run(rt, rt.kill(&c2.id, 9, true), None) {
                        warn!("cannot kill what is left of {}: {err:#}", c2.id);
                    }
                }
                me.output_then_exited(&c2, &p2, status, at);
                if monitored {
                    me.monitored_exit(&c2, &p2, status, at);
                }
            });
        if let Err(err) = spawned {
            // Here and now, then; without the kill, which needs the reaper,
            // and the reaper may be the caller (so no restart policy either).
            warn!("cannot start an exit thread: {err}");
            self.output_then_exited(c, p, status, at);
        }
    }

    fn output_then_exited(&self, c: &Container, p: &Process, status: u32, at: SystemTime) {
        if let Some(io) = p.io() {
            if !io.drain_output(OUTPUT_WAIT) {
                let (id, exec) = (&c.id, &p.exec_id);
                warn!("exit of {id} {exec:?} reported before its output was read");
            }
        }
        self.exited(c, p, status, at);
    }

    /// Records an exit; publishes TaskExit unless the start is not reported
    /// yet. Only through `exit_after_output`.
    fn exited(&self, c: &Container, p: &Process, status: u32, at: SystemTime) {
        if p.exec_id.is_empty() {
            // A kill the OOM thread has not reported yet goes out before TaskExit.
            if let Some(o) = c.oom() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn service() -> anyhow::Result<Arc<Service>> {
        let events = Arc::new(Publisher::start(None, "test".into())?);
        let reaper = Arc::new(Reaper::default());
        Ok(Service::new("test".into(), reaper, events, Box::new(|| {})))
    }

    /// A container in `bundle`; without a config.json it has a pid namespace
    /// of its own, so its init's exit runs no runtime command.
    fn container(bundle: &Path, init: Arc<Process>) -> Arc<Container> {
        let rt = Runtime {
            binary: "/bin/false".into(),
            root: bundle.join("root"),
            systemd_cgroup: false,
            log: None,
        };
        Arc::new(Container::new(
            "c",
            bundle.to_path_buf(),
            rt,
            None,
            init,
            None,
        ))
    }

    fn started(p: &Process, io: Io, pid: i32) {
        p.set_io(io);
        let mut st = p.lock();
        st.pid = pid;
        st.status = Status::Running;
        st.start_reported = true;
    }

    fn file_target(path: &Path, terminal: bool) -> Paths {
        Paths {
            stdout: format!("file://{}", path.display()),
            terminal,
            ..Default::default()
        }
    }

    #[test]
    fn an_execs_exit_shows_only_after_its_output_is_passed_on() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let s = service()?;
        let log = tmp.path().join("exec.log");
        let paths = file_target(&log, false);
        let (stdio, io) = Io::prepare(&paths, "c", "test", &s.reaper)?;
        // More than a pipe holds: the copier is busy as the process ends.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done",
            ])
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr)
            .spawn()?;
        let c = container(tmp.path(), Arc::new(Process::new("", Paths::default())));
        let p = Arc::new(Process::new("e1", paths));
        started(&p, io, child.id() as i32);
        c.execs().insert("e1".into(), p.clone());
        // (Another test of this binary may reap it first: gone either way.)
        let _ = child.wait();

        s.exit_after_output(&c, &p, 0, SystemTime::now());
        assert_eq!(p.wait().status, 0);
        let got = std::fs::read_to_string(&log)?;
        assert_eq!(got.lines().count(), 5000);
        assert!(
            got.ends_with("line-4999\n"),
            "ends with {:?}",
            got.lines().last()
        );
        Ok(())
    }

    #[test]
    fn an_inits_exit_shows_only_after_its_tty_output_is_passed_on() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let s = service()?;
        let log = tmp.path().join("tty.log");
        let paths = file_target(&log, true);
        let pty = nix::pty::openpty(None, None)?;
        let io = Io::default();
        io.attach_console(File::from(pty.master), &paths)?;
        let init = Arc::new(Process::new("", paths));
        started(&init, io, i32::MAX);
        let c = container(tmp.path(), init.clone());
        // Written, and the slave still open: as if a child the init left
        // behind held the tty, so the copier sees no end of file.
        let mut slave = File::from(pty.slave);
        let data = "tty-output;".repeat(2000);
        slave.write_all(data.as_bytes())?;

        s.exit_after_output(&c, &init, 7, SystemTime::now());
        assert_eq!(init.wait().status, 7);
        assert_eq!(std::fs::read_to_string(&log)?, data);
        drop(slave);
        Ok(())
    }
}
