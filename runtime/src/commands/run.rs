//! `skiff run`: create and start in one step. In the foreground skiff is a
//! child subreaper, forwards signals to the container's init, and returns its
//! exit code (128+N when it died of signal N). Signals are blocked before the
//! container starts and children are reaped with WNOHANG before every wait, so
//! an exit that happens at once is never missed.

use anyhow::{Context, Result};
use clap::Args;
use nix::sys::signal::SigmaskHow;

use crate::cli::GlobalOpts;
use crate::commands::{create, delete, start};
use crate::container;
use crate::foreground;
use crate::foreground::console::{self, ConsoleSocket};
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
        // A terminal in the foreground without --console-socket: like runc,
        // skiff takes the pty master itself and relays it to its own stdio.
        let mut opts = self.create.clone();
        let relay = if !self.detach
            && opts.console_socket.is_none()
            && create::wants_terminal(&opts.bundle)
        {
            let socket = ConsoleSocket::bind(&g.root)?;
            opts.console_socket = Some(socket.path().to_path_buf());
            Some(socket)
        } else {
            None
        };
        let mut c = create::create_locked(g, &opts, self.detach || relay.is_some())?;

        let set = foreground::signal_set();
        if !self.detach {
            set.thread_block().context("blocking signals")?;
        }
        let started = relay
            .map(console::relay)
            .transpose()
            .and_then(|pty| start::start_loaded(&mut c).map(|()| pty));
        let pty = match started {
            Ok(pty) => pty,
            Err(e) => {
                let _ = delete::destroy(&mut c);
                lock.remove();
                return Err(e);
            }
        };
        let init = c.pid().context("container has no init pid")?;
        drop(lock);
        if self.detach {
            return Ok(0);
        }

        let code = foreground::wait_relaying(init, &set, pty);
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
