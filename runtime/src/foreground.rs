//! Waiting for a container process in the foreground (`run` and `exec`
//! without --detach), as runc does: skiff is a child subreaper, passes the
//! signals it receives on to the process and returns its exit code (128+N
//! when it died of signal N).
//!
//! The signals are blocked before the process starts and children are reaped
//! with WNOHANG before every wait, so an exit that happens at once is never
//! missed. A process forked while they are blocked would inherit the mask
//! through execve; `Unblocked` clears it just before the exec.

pub mod console;

use std::collections::HashMap;
use std::time::Duration;

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals skiff takes from its caller and passes on to the process.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGWINCH,
    Signal::SIGPIPE,
];

/// SIGCHLD and the forwarded signals: what to block before the process starts.
pub fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    set
}

/// Waits for `pid` to exit, forwarding every other signal in `set` to it;
/// `handle` sees each signal first and keeps it from the process by
/// returning true. Returns the exit code, or 128+N when killed by signal N.
pub fn wait_forwarding_with(pid: Pid, set: &SigSet, mut handle: impl FnMut(Signal) -> bool) -> i32 {
    loop {
        // Reap everything that has exited: the process, and orphans reparented to us.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match wait_signal(set, Duration::from_millis(200)) {
            Some(Signal::SIGCHLD) | None => {}
            Some(sig) if handle(sig) => {}
            Some(sig) => {
                let _ = kill(pid, sig);
            }
        }
    }
}

/// sigtimedwait: the timeout is a second line of defence; SIGCHLD is blocked
/// before the process starts, so it is never lost.
fn wait_signal(set: &SigSet, timeout: Duration) -> Option<Signal> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    let raw: &libc::sigset_t = set.as_ref();
    // SAFETY: `raw` and `ts` are valid for the call; a null siginfo pointer is allowed.
    let n = unsafe { libc::sigtimedwait(raw, std::ptr::null_mut(), &ts) };
    if n <= 0 {
        return None;
    }
    Signal::try_from(n).ok()
}

/// Runs the wrapped executor with an empty signal mask, so a process started
/// while skiff blocks the forwarded signals does not keep them blocked.
#[derive(Clone)]
pub struct Unblocked<E>(pub E);

impl<E: Executor + Clone + 'static> Executor for Unblocked<E> {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .map_err(|e| ExecutorError::Other(format!("cannot clear the signal mask: {e}")))?;
        self.0.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.0.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        self.0.setup_envs(envs)
    }
}

/// `wait_forwarding_with` for a process that may have a relayed pty: SIGWINCH
/// resizes the pty, and its last output is drained before returning.
pub fn wait_relaying(pid: Pid, set: &SigSet, pty: Option<(console::Pty, console::Copying)>) -> i32 {
    let code = wait_forwarding_with(pid, set, |sig| match &pty {
        Some((p, _)) if sig == Signal::SIGWINCH => {
            p.resize();
            true
        }
        _ => false,
    });
    if let Some((p, copying)) = pty {
        copying.finish();
        drop(p);
    }
    code
}
