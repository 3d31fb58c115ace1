//! One process of a container (its init or an exec): pid, status, exit, IO,
//! and the order of its events (its exit is reported only after its start).

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use crate::io::{Io, Paths};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Copy)]
pub struct ExitInfo {
    pub status: u32,
    pub at: SystemTime,
}

#[derive(Debug)]
pub struct State {
    /// 0 until the runtime wrote the pid file.
    pub pid: i32,
    pub status: Status,
    pub exit: Option<ExitInfo>,
    /// Sequence mark of the reaper taken before the pid could exist.
    pub since: u64,
    /// TaskStart/TaskExecStarted went out; an exit before that waits here.
    pub start_reported: bool,
    pub exit_pending: bool,
    /// The pid was reaped; the exit is recorded once the output is passed
    /// on. Meanwhile the pid may belong to another process.
    pub reaped: bool,
}

pub struct Process {
    pub exec_id: String,
    pub paths: Paths,
    /// An exec's OCI process JSON, until its start hands it to the runtime.
    pub spec: Mutex<Option<Vec<u8>>>,
    io: OnceLock<Io>,
    state: Mutex<State>,
    exited: Condvar,
}

impl Process {
    pub fn new(exec_id: &str, paths: Paths) -> Self {
        Self {
            exec_id: exec_id.to_string(),
            paths,
            spec: Mutex::new(None),
            io: OnceLock::new(),
            state: Mutex::new(State {
                pid: 0,
                status: Status::Created,
                exit: None,
                since: 0,
                start_reported: false,
                exit_pending: false,
                reaped: false,
            }),
            exited: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The IO, once the process was created or started.
    pub fn io(&self) -> Option<&Io> {
        self.io.get()
    }

    pub fn set_io(&self, io: Io) {
        let _ = self.io.set(io);
    }

    pub fn pid(&self) -> i32 {
        self.lock().pid
    }

    /// Records the exit. Returns true when the caller must report it now
    /// (the start was reported); otherwise the start reporter does.
    pub fn set_exited(&self, st: &mut State, status: u32, at: SystemTime) -> bool {
        if st.exit.is_some() {
            return false;
        }
        st.exit = Some(ExitInfo { status, at });
        st.status = Status::Stopped;
        self.exited.notify_all();
        if st.start_reported {
            true
        } else {
            st.exit_pending = true;
            false
        }
    }

    /// Blocks until the process has exited.
    pub fn wait(&self) -> ExitInfo {
        let mut st = self.lock();
        loop {
            if let Some(e) = st.exit {
                return e;
            }
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}
