//! `skiff run`: create and start in one step. In the foreground skiff is a
//! child subreaper, forwards signals to the container's init, and returns its
//! exit code (128+N when it died of signal N). Signals are blocked before the
//! container starts and children are reaped with WNOHANG before every wait, so
//! an exit that happens at once is never missed.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::GlobalOpts;
use crate::commands::{create, delete, start};
use crate::container;
use crate::lock::ContainerLock;

#[derive(Args, Debug)]
pub struct Run {
    #[command(flatten)]
    pub create: create::Create,

    /// Return once the container has started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,

    /// Keep the container's state after it exits (foreground only)
    #[arg(long)]
    pub keep: bool,
}

/// Signals skiff takes from its caller and passes on to the container.
const FORWARDED: &[Signal] = &[
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

impl Run {
    pub fn exec(self, g: &GlobalOpts) -> Result<i32> {
        let id = self.create.id.clone();
        container::validate_id(&id)?;
        container::ensure_root(&g.root)?;
        if !self.detach {
            // The container's init is a grandchild; as subreaper skiff gets it back.
            nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
        }
        let lock = ContainerLock::acquire(&g.root, &id)?;
        let mut c = create::create_locked(g, &self.create, self.detach)?;

        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        for s in FORWARDED {
            set.add(*s);
        }
        if !self.detach {
            set.thread_block().context("blocking signals")?;
        }
        if let Err(e) = start::start_loaded(&mut c) {
            let _ = delete::destroy(&mut c);
            lock.remove();
            return Err(e);
        }
        let init = c.pid().context("container has no init pid")?;
        drop(lock);
        if self.detach {
            return Ok(0);
        }

        let code = wait_forwarding(init, &set);
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        if !self.keep {
            let lock = ContainerLock::acquire(&g.root, &id)?;
            if let Ok(mut c) = container::load(&g.root, &id) {
                delete::destroy(&mut c)?;
            }
            lock.remove();
        }
        Ok(code)
    }
}

/// Waits for `init` to exit, forwarding every other signal to it.
fn wait_forwarding(init: Pid, set: &SigSet) -> i32 {
    loop {
        // Reap everything that has exited: init, and orphans reparented to us.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == init => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match wait_signal(set, Duration::from_millis(200)) {
            Some(Signal::SIGCHLD) | None => {}
            Some(sig) => {
                let _ = kill(init, sig);
            }
        }
    }
}

/// sigtimedwait: the timeout is a second line of defence; SIGCHLD is blocked
/// before the container starts, so it is never lost.
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
