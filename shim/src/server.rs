//! The shim server: a child subreaper serving the Task API on the listener
//! `start` passed as fd 3, reaping children on SIGCHLD, exiting on Shutdown
//! (SIGUSR1 to itself) or SIGTERM.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use containerd_shim_protos::{create_task, Task};
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::getpid;
use tracing::info;
use ttrpc::Server;

use crate::events::Publisher;
use crate::flags::Flags;
use crate::logging;
use crate::reaper::Reaper;
use crate::service::Service;
use crate::socket;

/// The listener `start` hands over.
const LISTENER_FD: i32 = 3;
const V3: &str = "/containerd.task.v3.Task/";
const V2: &str = "/containerd.task.v2.Task/";

pub fn run(flags: &Flags) -> Result<()> {
    // One malloc arena: a per-thread arena for each copier and worker costs
    // more resident memory than the shim's whole heap.
    // SAFETY: mallopt only adjusts allocator tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    redirect_stderr_to_log_fifo();
    logging::init(flags.debug);
    // Started in the first container's bundle; a shim serving a group (a
    // pod, an engine) outlives that bundle, so it must not keep it as its
    // working directory (every runtime call would then fail in getcwd).
    if let Err(e) = std::env::set_current_dir("/") {
        tracing::warn!("cannot change to /: {e}");
    }

    // Blocked before any thread starts, so every thread inherits the mask and
    // only the sigwait below sees these.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
    ] {
        signals.add(s);
    }
    signals.thread_block().context("cannot block signals")?;
    nix::sys::prctl::set_child_subreaper(true).context("cannot become a child subreaper")?;

    let reaper = Arc::new(Reaper::default());
    let events = Arc::new(
        Publisher::start(std::env::var("TTRPC_ADDRESS").ok(), flags.namespace.clone())
            .context("cannot start the event publisher")?,
    );
    let service = Service::new(
        flags.namespace.clone(),
        reaper.clone(),
        events,
        Box::new(|| {
            let _ = kill(getpid(), Signal::SIGUSR1);
        }),
    );

    let listener = listener(flags)?;
    let task: Arc<dyn Task + Send + Sync> = service.clone();
    let v3 = create_task(task.clone());
    let v2 = create_task(task)
        .into_iter()
        .map(|(k, h)| (k.replacen(V3, V2, 1), h))
        .collect();
    let mut server = Server::new()
        .add_listener(listener)
        .context("bad listener")?
        .register_service(v3)
        .register_service(v2)
        // Few idle workers: memory is the budget; busy ones are added on demand.
        .set_thread_count_default(2)
        .set_thread_count_min(1)
        .set_thread_count_max(4);
    server.start().context("cannot start the ttrpc server")?;
    info!(id = %flags.id, "shim serving");

    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                for exit in reaper.reap() {
                    service.on_exit(exit);
                }
            }
            Ok(Signal::SIGUSR1) => {
                // Let the Shutdown reply go out first.
                std::thread::sleep(Duration::from_millis(20));
                // A container created meanwhile (monitor mode ends the shim
                // on its own) keeps it serving.
                if service.idle() {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => continue,
        }
    }
    info!(id = %flags.id, "shim exiting");
    if let Some(addr) = &flags.socket {
        let _ = std::fs::remove_file(socket::path_of(addr));
    }
    // Worker threads may sit in a blocking Wait; the process ends here.
    std::process::exit(0)
}

/// fd 3 from `start`, else the -socket address bound here.
fn listener(flags: &Flags) -> Result<i32> {
    if fcntl(LISTENER_FD, FcntlArg::F_GETFD).is_ok() {
        return Ok(LISTENER_FD);
    }
    let addr = flags
        .socket
        .as_deref()
        .context("no listener on fd 3 and no -socket address")?;
    let l =
        socket::bind(socket::path_of(addr))?.context("another shim already serves this socket")?;
    let fd = l.as_raw_fd();
    std::mem::forget(l);
    Ok(fd)
}

/// containerd reads the bundle's `log` FIFO when it is there. Opened
/// non-blocking: a full FIFO drops records instead of stalling the shim.
fn redirect_stderr_to_log_fifo() {
    let Ok(f) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    else {
        return;
    };
    let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
}
