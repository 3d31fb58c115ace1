//! Reading a container's json-file log: `logs` (all of it, `--tail`,
//! `--since`, `-f`) and attached sessions (`run` in the foreground,
//! `start -a`, `attach`), which follow the log as it grows, pass the user's
//! input to the container's stdin FIFO and forward signals.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use skiff_specs::jsonlog::{Entry, Follower};

use crate::container::{status, Container, ContainerDir};
use crate::engine::Engine;

/// Writes an entry's text to our stdout or stderr, as it came.
pub fn print(entry: &Entry, timestamps: bool) -> std::io::Result<()> {
    let text = if timestamps {
        format!("{} {}", entry.time, entry.log)
    } else {
        entry.log.clone()
    };
    if entry.stream == "stderr" {
        let mut e = std::io::stderr().lock();
        e.write_all(text.as_bytes())?;
        e.flush()
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(text.as_bytes())?;
        o.flush()
    }
}

/// Wakes a follower when the container's directory changes (log written,
/// rotated, state file replaced), with a timeout as a safety net.
pub struct Waker {
    inotify: Option<Inotify>,
}

impl Waker {
    pub fn new(dir: &ContainerDir) -> Self {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .ok()
            .filter(|i| {
                i.add_watch(
                    dir.path(),
                    AddWatchFlags::IN_MODIFY
                        | AddWatchFlags::IN_CREATE
                        | AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_CLOSE_WRITE,
                )
                .is_ok()
            });
        Self { inotify }
    }

    /// Returns after a change or `limit`, whichever comes first.
    pub fn wait(&self, limit: Duration) {
        match &self.inotify {
            Some(i) => {
                let mut fds = [nix::poll::PollFd::new(
                    i.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = limit.as_millis().min(u128::from(u16::MAX)) as u16;
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
                let _ = i.read_events();
            }
            None => std::thread::sleep(limit.min(Duration::from_millis(20))),
        }
    }
}

/// A signal caught during an attached session, to pass on to the container.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn catch(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
}

fn catch_signals(sigs: &[nix::sys::signal::Signal]) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(
        SigHandler::Handler(catch),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in sigs {
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe.
        let _ = unsafe { sigaction(*s, &action) };
    }
}

/// An attached session on one container.
pub struct Session {
    container: Container,
    dir: ContainerDir,
    follower: Follower,
}

impl Session {
    /// Begins following the log before the container starts (`from_start`:
    /// from the log's first line, for a fresh container).
    pub fn prepare(engine: &Engine, c: &Container, from_start: bool) -> Result<Session> {
        let dir = engine.containers.dir(&c.id);
        Ok(Session {
            follower: Follower::new(&dir.log(&c.id), from_start),
            container: c.clone(),
            dir,
        })
    }

    /// Streams the output until the container stops for good; returns its
    /// exit code. `stdin`: pass our input to the container.
    pub fn attach(mut self, engine: &Engine, stdin: bool) -> Result<i32> {
        use nix::sys::signal::Signal;
        let c = &self.container;
        let tty = c.config.tty;
        let _raw = if tty && stdin {
            crate::terminal::RawMode::enter()
        } else {
            None
        };
        let monitor = engine.monitor.connect(&self.dir.bundle(), &c.id).ok();
        if tty {
            catch_signals(&[Signal::SIGWINCH]);
            resize(monitor.as_ref());
        } else {
            catch_signals(&[
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGHUP,
                Signal::SIGQUIT,
            ]);
        }
        if stdin && c.config.open_stdin {
            forward_stdin(
                self.dir.stdin_fifo(),
                engine.monitor.clone(),
                self.dir.bundle(),
                c.id.clone(),
                !tty,
            )?;
        }
        let waker = Waker::new(&self.dir);
        loop {
            for e in self.follower.poll()? {
                print(&e, false)?;
            }
            let sig = CAUGHT.swap(0, Ordering::SeqCst);
            if sig == libc::SIGWINCH {
                resize(monitor.as_ref());
            } else if sig != 0 {
                if let Some(m) = &monitor {
                    let _ = m.kill("", sig as u32, false);
                }
            }
            let st = status::current(&self.dir);
            if !status::is_running(&st) {
                // Whatever the monitor wrote before the exit was recorded.
                for e in self.follower.poll()? {
                    print(&e, false)?;
                }
                return Ok(st.exit_code);
            }
            waker.wait(Duration::from_millis(200));
        }
    }
}

fn resize(monitor: Option<&crate::monitor::Monitor>) {
    if let (Some(m), Some((w, h))) = (monitor, crate::terminal::size(std::io::stdout().as_fd())) {
        let _ = m.resize("", w, h);
    }
}

/// Copies our stdin into the container's stdin FIFO on a thread of its own;
/// at our end of input the container's stdin is closed too (not with a
/// terminal, where input ends with the session).
fn forward_stdin(
    fifo: std::path::PathBuf,
    setup: crate::monitor::MonitorSetup,
    bundle: std::path::PathBuf,
    id: String,
    close_at_eof: bool,
) -> Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .with_context(|| format!("cannot open {}", fifo.display()))?;
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut out);
            drop(out);
            if close_at_eof {
                if let Ok(m) = setup.connect(&bundle, &id) {
                    let _ = m.close_stdin("");
                }
            }
        })?;
    Ok(())
}
