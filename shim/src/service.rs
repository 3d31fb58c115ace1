//! The Task service: containerd's RPCs on the containers of this shim. The
//! same handlers serve `containerd.task.v2.Task` and `containerd.task.v3.Task`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use containerd_shim_protos::api::*;
use containerd_shim_protos::events::task::*;
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::{EnumOrUnknown, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::topics::*;
use containerd_shim_protos::types::task::{ProcessInfo, Status as TaskStatus};
use containerd_shim_protos::Task;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, warn};
use ttrpc::{Code, TtrpcContext};

mod commands;
mod exits;
mod lifecycle;
mod monitored;

use commands::read_pid;

use crate::console::ConsoleSocket;
use crate::container::Container;
use crate::events::{timestamp, to_any, Publisher};
use crate::io::{Io, Paths};
use crate::monitor::log::JsonLog;
use crate::monitor::Monitor;
use crate::mount;
use crate::oom::Oom;
use crate::options::Options;
use crate::process::{ExitInfo, Process, Status};
use crate::reaper::{Exit, Reaper};
use crate::runtime::{CreateOpts, ExecOpts, Runtime};

/// How long Delete waits for a process's output to drain.
const DRAIN: Duration = Duration::from_secs(2);
/// How long an exit waits at most for the process's output to be passed on
/// (and read from FIFOs): only a client that stopped reading takes so long.
const OUTPUT_WAIT: Duration = Duration::from_secs(1);

type RpcResult<T> = ttrpc::Result<T>;

fn rpc_err(code: Code, msg: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

fn internal(e: anyhow::Error) -> ttrpc::Error {
    rpc_err(Code::UNKNOWN, format!("{e:#}"))
}

pub struct Service {
    /// Itself, for the threads that record exits.
    me: Weak<Service>,
    namespace: String,
    reaper: Arc<Reaper>,
    events: Arc<Publisher>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Asks the server to exit (Shutdown with no containers left).
    shutdown: Box<dyn Fn() + Send + Sync>,
    next_file: AtomicU64,
}

impl Service {
    pub fn new(
        namespace: String,
        reaper: Arc<Reaper>,
        events: Arc<Publisher>,
        shutdown: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            namespace,
            reaper,
            events,
            containers: Mutex::new(HashMap::new()),
            shutdown,
            next_file: AtomicU64::new(0),
        })
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container(&self, id: &str) -> RpcResult<Arc<Container>> {
        self.containers()
            .get(id)
            .cloned()
            .ok_or_else(|| rpc_err(Code::NOT_FOUND, format!("container {id} not found")))
    }

    /// Whether `c` is still the shim's container of its id.
    fn is_current(&self, c: &Container) -> bool {
        self.containers()
            .get(&c.id)
            .is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), c))
    }

    /// Drops `c` (and never a newer container with its id).
    fn forget(&self, c: &Container) {
        let mut all = self.containers();
        if all
            .get(&c.id)
            .is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), c))
        {
            all.remove(&c.id);
        }
    }

    /// Serving no container: the shim may exit.
    pub fn idle(&self) -> bool {
        self.containers().is_empty()
    }

    /// Exits the shim once it serves no container, as after Shutdown.
    fn shutdown_if_idle(&self) {
        if self.idle() {
            (self.shutdown)();
        }
    }

    fn process(&self, id: &str, exec_id: &str) -> RpcResult<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        let p = c.process(exec_id).ok_or_else(|| {
            rpc_err(
                Code::NOT_FOUND,
                format!("process {exec_id} of {id} not found"),
            )
        })?;
        Ok((c, p))
    }
}

fn task_status(s: Status) -> EnumOrUnknown<TaskStatus> {
    EnumOrUnknown::new(match s {
        Status::Created => TaskStatus::CREATED,
        Status::Running => TaskStatus::RUNNING,
        Status::Paused => TaskStatus::PAUSED,
        Status::Stopped => TaskStatus::STOPPED,
    })
}

impl Task for Service {
    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> RpcResult<CreateTaskResponse> {
        debug!(id = %req.id, "create");
        if self.containers().contains_key(&req.id) {
            return Err(rpc_err(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let pid = self.do_create(&req).map_err(internal)?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> RpcResult<StartResponse> {
        debug!(id = %req.id, exec = %req.exec_id, "start");
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let pid = if req.exec_id.is_empty() {
            if p.lock().status != Status::Created {
                return Err(rpc_err(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is not in the created state", c.id),
                ));
            }
            self.start_init(&c, &p).map_err(internal)?
        } else {
            self.start_exec(&c, &p).map_err(internal)?
        };
        Ok(StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn state(&self, _: &TtrpcContext, req: StateRequest) -> RpcResult<StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let st = p.lock();
        Ok(StateResponse {
            id: if p.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            },
            bundle: c.bundle.display().to_string(),
            pid: st.pid as u32,
            status: task_status(st.status),
            stdin: p.paths.stdin.clone(),
            stdout: p.paths.stdout.clone(),
            stderr: p.paths.stderr.clone(),
            terminal: p.paths.terminal,
            exit_status: st.exit.map_or(0, |e| e.status),
            exited_at: st.exit.map(|e| timestamp(e.at)).into(),
            exec_id: p.exec_id.clone(),
            ..Default::default()
        })
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> RpcResult<WaitResponse> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let e = p.wait();
        Ok(WaitResponse {
            exit_status: e.status,
            exited_at: Some(timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> RpcResult<Empty> {
        debug!(id = %req.id, exec = %req.exec_id, signal = req.signal, all = req.all, "kill");
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        // A reaped pid may be another process's already.
        let (pid, exited) = {
            let st = p.lock();
            (st.pid, st.exit.is_some() || st.reaped)
        };
        if req.exec_id.is_empty() {
            if let Some(m) = &c.monitor {
                // A stop during a restart's back-off ends it.
                m.wake();
            }
        }
        if exited && !req.all {
            return Err(rpc_err(Code::NOT_FOUND, "process already finished"));
        }
        if req.exec_id.is_empty() {
            self.run(&c.runtime, c.runtime.kill(&c.id, req.signal, req.all), None)
                .map_err(internal)?;
        } else if !exited {
            // (An exec that is gone has nothing to signal, also with --all.)
            if pid <= 0 {
                return Err(rpc_err(
                    Code::FAILED_PRECONDITION,
                    "the exec has not started",
                ));
            }
            let sig = Signal::try_from(req.signal as i32).map_err(|_| {
                rpc_err(Code::INVALID_ARGUMENT, format!("bad signal {}", req.signal))
            })?;
            kill(Pid::from_raw(pid), sig)
                .map_err(|e| rpc_err(Code::NOT_FOUND, format!("cannot signal {pid}: {e}")))?;
        }
        Ok(Empty::new())
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> RpcResult<DeleteResponse> {
        debug!(id = %req.id, exec = %req.exec_id, "delete");
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        if req.exec_id.is_empty() {
            let resp = self.delete_init(&c)?;
            if let Some(m) = &c.monitor {
                m.wake();
                // A run's end is the exit's business; a container that never
                // ran ends its monitor here.
                if m.never_started() {
                    self.shutdown_if_idle();
                }
            }
            return Ok(resp);
        }
        let (pid, status, exit) = {
            let st = p.lock();
            (st.pid, st.status, st.exit)
        };
        if status == Status::Running {
            return Err(rpc_err(
                Code::FAILED_PRECONDITION,
                format!("exec {} is running", req.exec_id),
            ));
        }
        c.execs().remove(&req.exec_id);
        if let Some(io) = p.io() {
            io.finish(DRAIN);
        }
        let exit = exit.unwrap_or(ExitInfo {
            status: 0,
            at: SystemTime::now(),
        });
        Ok(DeleteResponse {
            pid: pid.max(0) as u32,
            exit_status: exit.status,
            exited_at: Some(timestamp(exit.at)).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> RpcResult<PidsResponse> {
        let c = self.container(&req.id)?;
        let out = self
            .run(&c.runtime, c.runtime.ps(&c.id), None)
            .map_err(internal)?;
        let pids: Vec<i32> = serde_json::from_slice(&out).map_err(|e| {
            rpc_err(
                Code::UNKNOWN,
                format!("runtime ps printed no pid list: {e}"),
            )
        })?;
        let execs: Vec<(i32, String)> = c
            .execs()
            .values()
            .map(|p| (p.pid(), p.exec_id.clone()))
            .collect();
        let processes = pids
            .into_iter()
            .map(|pid| {
                let info = execs.iter().find(|(p, _)| *p == pid).and_then(|(_, id)| {
                    to_any(&ProcessDetails {
                        exec_id: id.clone(),
                        ..Default::default()
                    })
                    .ok()
                });
                ProcessInfo {
                    pid: pid as u32,
                    info: MessageField::from_option(info),
                    ..Default::default()
                }
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> RpcResult<Empty> {
        self.freeze(&req.id, true)
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> RpcResult<Empty> {
        self.freeze(&req.id, false)
    }

    fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> RpcResult<Empty> {
        Err(rpc_err(
            Code::UNIMPLEMENTED,
            "checkpoint is not supported by containerd-shim-skiff-v2",
        ))
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> RpcResult<Empty> {
        debug!(id = %req.id, exec = %req.exec_id, "exec");
        let c = self.container(&req.id)?;
        if c.init().lock().exit.is_some() {
            return Err(rpc_err(
                Code::FAILED_PRECONDITION,
                format!("container {} has stopped", c.id),
            ));
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| rpc_err(Code::INVALID_ARGUMENT, "exec without a process spec"))?;
        {
            let mut execs = c.execs();
            if req.exec_id.is_empty() {
                return Err(rpc_err(Code::INVALID_ARGUMENT, "exec without an exec id"));
            }
            if execs.contains_key(&req.exec_id) {
                return Err(rpc_err(
                    Code::ALREADY_EXISTS,
                    format!("exec {:?} already exists", req.exec_id),
                ));
            }
            let paths = Paths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            };
            let p = Process::new(&req.exec_id, paths);
            *p.spec.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec);
            execs.insert(req.exec_id.clone(), Arc::new(p));
        }
        self.events.publish(
            TASK_EXEC_ADDED_EVENT_TOPIC,
            &TaskExecAdded {
                container_id: c.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> RpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let io = p
            .io()
            .ok_or_else(|| rpc_err(Code::FAILED_PRECONDITION, "the process has not started"))?;
        io.resize(req.width, req.height).map_err(internal)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> RpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            if let Some(io) = p.io() {
                io.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> RpcResult<Empty> {
        let c = self.container(&req.id)?;
        let resources = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| rpc_err(Code::INVALID_ARGUMENT, "update without resources"))?;
        self.run(&c.runtime, c.runtime.update(&c.id), Some(&resources))
            .map_err(internal)?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> RpcResult<StatsResponse> {
        let c = self.container(&req.id)?;
        let stats = c.cgroup.metrics().map_err(internal)?;
        Ok(StatsResponse {
            stats: Some(stats).into(),
            ..Default::default()
        })
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> RpcResult<ConnectResponse> {
        let task_pid = self
            .containers()
            .get(&req.id)
            .map_or(0, |c| c.init().pid().max(0) as u32);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: format!("skiff-shim {}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> RpcResult<Empty> {
        if self.containers().is_empty() {
            (self.shutdown)();
        }
        Ok(Empty::new())
    }
}
