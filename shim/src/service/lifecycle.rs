//! Creating a container (rootfs mounts, IO, the runtime's create), starting
//! an exec, and deleting the init.

use super::*;

impl Service {
    /// Create: options, rootfs mounts, the runtime's create, TaskCreate, the
    /// OOM watcher. Returns the init's pid.
    pub(super) fn do_create(&self, req: &CreateTaskRequest) -> anyhow::Result<u32> {
        let opts = Options::from_any(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        let rt = Runtime {
            binary: opts.binary(),
            root: opts.root(&self.namespace),
            systemd_cgroup: opts.systemd_cgroup,
            log: Some(bundle.join("log.json")),
        };
        opts.save(&bundle)?;
        let monitor = Monitor::load(&bundle)?;
        let log = monitor.as_ref().and_then(|m| m.log()).cloned();
        let rootfs = (!req.rootfs.is_empty()).then(|| bundle.join("rootfs"));
        if let Some(r) = &rootfs {
            mount::mount_all(&req.rootfs, r)?;
        }
        // With a json-file log the output goes there, not to stdio paths.
        let (stdout, stderr) = match &log {
            Some(_) => (String::new(), String::new()),
            None => (req.stdout.clone(), req.stderr.clone()),
        };
        let paths = Paths {
            stdin: req.stdin.clone(),
            stdout,
            stderr,
            terminal: req.terminal,
        };
        let result = self.create_init(&req.id, &rt, &opts, &bundle, paths, log.as_ref());
        if result.is_err() {
            if let Some(r) = &rootfs {
                mount::unmount_all(r);
            }
            return result.map(|_| 0);
        }
        let (init, pid) = result?;
        let c = Arc::new(Container::new(
            &req.id,
            bundle,
            rt,
            rootfs,
            init.clone(),
            monitor.clone(),
        ));
        self.containers().insert(req.id.clone(), c.clone());
        if let Some(m) = &monitor {
            m.created();
        }
        // An exit that came before the pid was recorded.
        let since = init.lock().since;
        if let Some(e) = self.reaper.take(pid, since) {
            self.exit_after_output(&c, &init, e.status, e.at);
        }
        self.events.publish(
            TASK_CREATE_EVENT_TOPIC,
            &TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: Some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                })
                .into(),
                checkpoint: req.checkpoint.clone(),
                pid: pid as u32,
                ..Default::default()
            },
        );
        self.watch_oom(&c);
        Ok(pid as u32)
    }

    /// Reports the OOM kills of the container's current run (TaskOOM, and
    /// the monitor's oom_killed).
    pub(super) fn watch_oom(&self, c: &Container) {
        let events = self.events.clone();
        let id = c.id.clone();
        let monitor = c.monitor.clone();
        let on_oom = Box::new(move || {
            if let Some(m) = &monitor {
                m.note_oom();
            }
            events.publish(
                TASK_OOM_EVENT_TOPIC,
                &TaskOOM {
                    container_id: id.clone(),
                    ..Default::default()
                },
            )
        });
        if let Some(o) = Oom::new(&c.cgroup, on_oom) {
            if let Err(e) = o.watch() {
                warn!("no OOM events for {}: {e:#}", c.id);
            }
            c.set_oom(o);
        }
    }

    /// The init process: its IO (to the json-file `log` if there is one),
    /// `runtime create`, its pid and console.
    pub(super) fn create_init(
        &self,
        id: &str,
        rt: &Runtime,
        opts: &Options,
        bundle: &Path,
        paths: Paths,
        log: Option<&Arc<JsonLog>>,
    ) -> anyhow::Result<(Arc<Process>, i32)> {
        let since = self.reaper.mark();
        let (stdio, io) = match log {
            Some(log) => Io::prepare_logged(&paths, log)?,
            None => Io::prepare(&paths, id, &self.namespace, &self.reaper)?,
        };
        let console = paths.terminal.then(ConsoleSocket::new).transpose()?;
        let pid_file = bundle.join("init.pid");
        let mut cmd = rt.create(
            id,
            &CreateOpts {
                bundle,
                pid_file: &pid_file,
                console_socket: console.as_ref().map(|c| c.path()),
                no_pivot: opts.no_pivot_root,
                no_new_keyring: opts.no_new_keyring,
            },
        );
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        if let Err(e) = self.run_with_stdio(rt, cmd) {
            io.finish(Duration::ZERO);
            let _ = self.run(rt, rt.delete(id, true), None);
            return Err(e);
        }
        let pid = read_pid(&pid_file)?;
        if let Some(console) = &console {
            io.attach_console(console.receive()?, &paths)?;
        }
        let init = Arc::new(Process::new("", paths));
        init.set_io(io);
        {
            let mut st = init.lock();
            st.pid = pid;
            st.since = since;
        }
        Ok((init, pid))
    }

    /// Starts an exec added by the Exec RPC: `runtime exec --detach`.
    pub(super) fn start_exec(&self, c: &Arc<Container>, p: &Arc<Process>) -> anyhow::Result<i32> {
        let spec = {
            let st = p.lock();
            if st.status != Status::Created || st.exit.is_some() {
                anyhow::bail!("exec {} was already started", p.exec_id);
            }
            drop(st);
            p.spec.lock().unwrap_or_else(|e| e.into_inner()).take()
        }
        .context("the exec's process spec is missing")?;
        let since = self.reaper.mark();
        let (stdio, io) = Io::prepare(&p.paths, &c.id, &self.namespace, &self.reaper)?;
        let console = p.paths.terminal.then(ConsoleSocket::new).transpose()?;
        let spec_file = self.scratch(&c.bundle, "process.json");
        let pid_file = self.scratch(&c.bundle, "pid");
        std::fs::write(&spec_file, &spec)
            .with_context(|| format!("cannot write {}", spec_file.display()))?;
        let mut cmd = c.runtime.exec(
            &c.id,
            &ExecOpts {
                process: &spec_file,
                pid_file: &pid_file,
                console_socket: console.as_ref().map(|s| s.path()),
            },
        );
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let ran = self.run_with_stdio(&c.runtime, cmd);
        let _ = std::fs::remove_file(&spec_file);
        let pid = ran.and_then(|()| read_pid(&pid_file));
        let _ = std::fs::remove_file(&pid_file);
        let pid = match pid {
            Ok(pid) => pid,
            Err(e) => {
                // What the runtime wrote goes out before the exit shows.
                io.drain_output(OUTPUT_WAIT);
                io.finish(Duration::ZERO);
                p.set_io(io);
                let mut st = p.lock();
                st.start_reported = true;
                p.set_exited(&mut st, 255, SystemTime::now());
                return Err(e);
            }
        };
        if let Some(console) = &console {
            io.attach_console(console.receive()?, &p.paths)?;
        }
        p.set_io(io);
        {
            let mut st = p.lock();
            st.pid = pid;
            st.since = since;
            if st.exit.is_none() {
                st.status = Status::Running;
            }
        }
        self.report_start(c, p, |pid| {
            self.events.publish(
                TASK_EXEC_STARTED_EVENT_TOPIC,
                &TaskExecStarted {
                    container_id: c.id.clone(),
                    exec_id: p.exec_id.clone(),
                    pid: pid as u32,
                    ..Default::default()
                },
            )
        });
        // Gone already (on_exit could not match it without its pid).
        if let Some(e) = self.reaper.take(pid, since) {
            self.exit_after_output(c, p, e.status, e.at);
        }
        Ok(pid)
    }

    /// Deletes a stopped (or never started) container: `runtime delete`,
    /// IO, rootfs mounts, TaskDelete. Never while a monitor's restart
    /// replaces the container.
    pub(super) fn delete_init(&self, c: &Container) -> RpcResult<DeleteResponse> {
        let _restart = c.monitor.as_ref().map(|m| m.lifecycle());
        if !self.is_current(c) {
            return Err(rpc_err(
                Code::NOT_FOUND,
                format!("container {} not found", c.id),
            ));
        }
        let p = c.init();
        let (status, pid, exit) = {
            let st = p.lock();
            (st.status, st.pid, st.exit)
        };
        if matches!(status, Status::Running | Status::Paused) {
            return Err(rpc_err(
                Code::FAILED_PRECONDITION,
                format!("container {} is running; kill it before deleting", c.id),
            ));
        }
        self.run(
            &c.runtime,
            c.runtime.delete(&c.id, status == Status::Created),
            None,
        )
        .map_err(internal)?;
        for e in c.processes() {
            if let Some(io) = e.io() {
                io.finish(DRAIN);
            }
        }
        if let Some(r) = &c.rootfs {
            mount::unmount_all(r);
        }
        let exit = exit.unwrap_or(ExitInfo {
            status: 128 + Signal::SIGKILL as u32,
            at: SystemTime::now(),
        });
        self.forget(c);
        self.events.publish(
            TASK_DELETE_EVENT_TOPIC,
            &TaskDelete {
                container_id: c.id.clone(),
                pid: pid as u32,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)).into(),
                id: c.id.clone(),
                ..Default::default()
            },
        );
        Ok(DeleteResponse {
            pid: pid as u32,
            exit_status: exit.status,
            exited_at: Some(timestamp(exit.at)).into(),
            ..Default::default()
        })
    }

    /// Pause (`pause`) or resume: the runtime command, the init's status
    /// (an init that exited meanwhile stays stopped), the event.
    pub(super) fn freeze(&self, id: &str, pause: bool) -> RpcResult<Empty> {
        let c = self.container(id)?;
        let cmd = if pause {
            c.runtime.pause(&c.id)
        } else {
            c.runtime.resume(&c.id)
        };
        let monitor = c.monitor.as_ref();
        if let (true, Some(m)) = (pause, monitor) {
            m.stop_health();
        }
        if let Err(e) = self.run(&c.runtime, cmd, None) {
            if let (true, Some(m)) = (pause, monitor) {
                m.resume_health(|| self.probe(&c));
            }
            return Err(internal(e));
        }
        {
            let init = c.init();
            let mut st = init.lock();
            if st.exit.is_none() {
                st.status = if pause {
                    Status::Paused
                } else {
                    Status::Running
                };
            }
        }
        if let Some(m) = monitor {
            m.paused(pause, || self.probe(&c));
        }
        let container_id = c.id.clone();
        if pause {
            let event = TaskPaused {
                container_id,
                ..Default::default()
            };
            self.events.publish(TASK_PAUSED_EVENT_TOPIC, &event);
        } else {
            let event = TaskResumed {
                container_id,
                ..Default::default()
            };
            self.events.publish(TASK_RESUMED_EVENT_TOPIC, &event);
        }
        Ok(Empty::new())
    }
}
