//! A pty for a foreground process (`--tty` without --detach), as runc makes
//! one: libcontainer only sends the pty master to a console socket, so skiff
//! listens on a private socket of its own, receives the master and copies
//! between it and its own stdin and stdout. When stdin is a terminal it is put
//! in raw mode for the session (restored on drop) and its size is given to the
//! pty, again on every SIGWINCH.
//!
//! The process may ask for its window size before skiff has the master, so
//! the first size travels in the process's `consoleSize`, which libcontainer
//! ignores and `Sized` applies just before the exec (for a console socket's
//! pty too, as containerd sets it).

use std::fs::{self, File};
use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{Box as ConsoleSize, BoxBuilder, Spec};
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

/// How long output may keep coming after the process exited (from processes
/// it left behind on the pty) before skiff stops copying.
const DRAIN: Duration = Duration::from_secs(1);

/// The socket libcontainer connects to, before the process starts.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens at `<dir>/skiff-console-<pid>.sock`; `dir` should be private.
    pub fn bind(dir: &Path) -> Result<Self> {
        let name = format!("skiff-console-{}.sock", std::process::id());
        // Absolute: libcontainer links to it from another directory.
        let path = std::path::absolute(dir)?.join(&name);
        let _ = fs::remove_file(&path);
        // A socket address holds 108 bytes at most and state directories can
        // be longer: bind through a descriptor of the directory.
        let d = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
        let short = format!("/proc/self/fd/{}/{name}", d.as_raw_fd());
        let listener = UnixListener::bind(&short)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the pty master libcontainer sent. The process has started by
    /// now, so the connection and the fd are already queued.
    pub fn receive(self) -> Result<Pty> {
        let _ = fs::remove_file(&self.path);
        self.listener.set_nonblocking(true)?;
        let (conn, _) = self
            .listener
            .accept()
            .context("the process did not connect to the console socket")?;
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("cannot receive the pty master")?;
        for cmsg in msg.cmsgs().context("cannot receive the pty master")? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                // Owned at once, so any fd past the first is closed, not leaked.
                let owned: Vec<OwnedFd> = fds
                    .into_iter()
                    .map(|fd| {
                        // SAFETY: SCM_RIGHTS just installed `fd` in this process; nothing else
                        // owns it.
                        unsafe { OwnedFd::from_raw_fd(fd) }
                    })
                    .collect();
                if let Some(master) = owned.into_iter().next() {
                    return Ok(Pty {
                        master: File::from(master),
                        saved: None,
                    });
                }
            }
        }
        bail!("no pty master came over the console socket")
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Receives the pty master from `socket` and starts relaying it.
pub fn relay(socket: ConsoleSocket) -> Result<(Pty, Copying)> {
    let mut pty = socket.receive()?;
    let copying = pty.start()?;
    Ok((pty, copying))
}

/// The master end of the process's pty, and our terminal's saved mode.
pub struct Pty {
    master: File,
    saved: Option<Termios>,
}

impl Pty {
    /// Raw mode and the window size when stdin is a terminal; then copies
    /// stdin to the pty and the pty to stdout until `finish`.
    pub fn start(&mut self) -> Result<Copying> {
        let stdin = io::stdin();
        if let Ok(mode) = termios::tcgetattr(stdin.as_fd()) {
            let mut raw = mode.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
                .context("cannot put the terminal in raw mode")?;
            self.saved = Some(mode);
            self.resize();
        }
        let mut to_pty = self.master.try_clone()?;
        std::thread::spawn(move || {
            // Ends with skiff; stdin's EOF just stops the copy.
            let _ = io::copy(&mut io::stdin().lock(), &mut to_pty);
        });
        let mut from_pty = self.master.try_clone()?;
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut out = io::stdout().lock();
            // EIO once no process holds the pty's other end any more.
            while let Ok(n) = from_pty.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            let _ = done_tx.send(());
        });
        Ok(Copying { done })
    }

    /// Gives the pty our terminal's window size (after SIGWINCH, too).
    pub fn resize(&self) {
        if self.saved.is_some() {
            if let Some(size) = window_size(io::stdin().as_fd()) {
                set_window_size(self.master.as_fd(), &size);
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(mode) = &self.saved {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, mode);
        }
    }
}

/// The copy from the pty to stdout, running.
pub struct Copying {
    done: mpsc::Receiver<()>,
}

impl Copying {
    /// Waits (briefly) for the output the process left in the pty.
    pub fn finish(self) {
        let _ = self.done.recv_timeout(DRAIN);
    }
}

/// Our terminal's size, when stdin is one: the pty's first size.
pub fn terminal_size() -> Option<ConsoleSize> {
    let size = window_size(io::stdin().as_fd())?;
    BoxBuilder::default()
        .height(size.ws_row)
        .width(size.ws_col)
        .build()
        .ok()
}

/// Gives the process's pty (its stdin by now) `process.consoleSize`, then
/// runs the wrapped executor.
#[derive(Clone)]
pub struct Sized<E>(pub E);

impl<E: Executor + Clone + 'static> Executor for Sized<E> {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let process = spec.process().as_ref();
        let size = process
            .filter(|p| p.terminal() == Some(true))
            .and_then(|p| p.console_size());
        if let Some(size) = size {
            let ws = libc::winsize {
                ws_row: u16::try_from(size.height()).unwrap_or(u16::MAX),
                ws_col: u16::try_from(size.width()).unwrap_or(u16::MAX),
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            set_window_size(io::stdin().as_fd(), &ws);
        }
        self.0.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.0.validate(spec)
    }

    fn setup_envs(
        &self,
        envs: std::collections::HashMap<String, String>,
    ) -> Result<(), ExecutorSetEnvsError> {
        self.0.setup_envs(envs)
    }
}

fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`, which lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0).then_some(size)
}

fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) {
    // SAFETY: TIOCSWINSZ only reads the winsize `size` points to.
    let _ = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) };
}
