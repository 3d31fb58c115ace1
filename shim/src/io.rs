//! A process's stdio. The shim owns the pipes between the container and
//! containerd's FIFOs (or log file, or logging binary), so container IO
//! survives a containerd restart. Opening a FIFO never blocks the shim:
//! stdin's is opened read-write and non-blocking; an output FIFO is polled
//! for containerd's reader for a few seconds, then left to its copy thread.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;
use tracing::warn;

use crate::monitor::log::{JsonLog, LogStream};
use crate::reaper::Reaper;

mod output;

use output::Copiers;

/// Copy threads need little stack: their buffer is on the heap.
const COPIER_STACK: usize = 64 * 1024;
const BUF: usize = 32 * 1024;
/// A copier's first buffer: most processes write little, and an idle
/// copier then keeps little memory (a monitor has two per container).
const FIRST_BUF: usize = 4 * 1024;
/// Reads of BUF that CloseIO passes on at most: 1 MiB, the largest FIFO
/// buffer an unprivileged client can ask for.
const DRAIN_READS: usize = 32;

/// The stdio containerd asked for: FIFO paths, `file://` or `binary://` URIs.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What the runtime command (and so the container process) gets as stdio.
pub struct ChildStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// The shim's side of a process's IO.
#[derive(Default)]
pub struct Io {
    /// Where stdin data goes: the container's stdin pipe or the pty master.
    stdin_target: Arc<Mutex<Option<File>>>,
    /// Writing here stops the stdin copier.
    stdin_cancel: Mutex<Option<OwnedFd>>,
    /// The pty master, for resizing.
    console: Mutex<Option<File>>,
    /// A terminal's output target, opened before the process starts.
    tty_out: Mutex<Option<Output>>,
    /// The output copiers.
    copiers: Copiers,
    /// Our readers of output FIFOs, held until the process is deleted: like
    /// containerd's own shim, so written output stays in the FIFO until then.
    kept: Arc<Mutex<Vec<File>>>,
    /// A monitored init's json-file log: its output goes there instead.
    log: Option<Arc<JsonLog>>,
}

impl Io {
    /// Sets up pipes and copiers for a process without a terminal; with a
    /// terminal the runtime's stdio is /dev/null, the output target is opened
    /// and `attach_console` follows.
    pub fn prepare(
        paths: &Paths,
        id: &str,
        namespace: &str,
        reaper: &Reaper,
    ) -> Result<(ChildStdio, Io)> {
        let io = Io::default();
        if paths.terminal {
            // Opened now, as without a terminal: the client's reader is then
            // ready long before the process can end (ctr drops what its
            // reader has not taken when it sees the exit).
            if !paths.stdout.is_empty() {
                *lock(&io.tty_out) = open_output_now(&paths.stdout)?;
            }
            let child = ChildStdio {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
            };
            return Ok((child, io));
        }
        let stdin = io.stdin_pipe(&paths.stdin)?;
        let (stdout, stderr) = if let Some(bin) = paths.stdout.strip_prefix("binary://") {
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            start_logger(bin, or, er, id, namespace, reaper)?;
            (Stdio::from(ow), Stdio::from(ew))
        } else {
            (io.output(&paths.stdout)?, io.output(&paths.stderr)?)
        };
        Ok((
            ChildStdio {
                stdin,
                stdout,
                stderr,
            },
            io,
        ))
    }

    /// Like `prepare`, for a monitored init whose output goes to the
    /// json-file `log` (stdout and stderr, or the terminal as stdout); stdin
    /// is the FIFO in `paths` as usual.
    pub fn prepare_logged(paths: &Paths, log: &Arc<JsonLog>) -> Result<(ChildStdio, Io)> {
        let io = Io {
            log: Some(log.clone()),
            ..Io::default()
        };
        if paths.terminal {
            let child = ChildStdio {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
            };
            return Ok((child, io));
        }
        let stdin = io.stdin_pipe(&paths.stdin)?;
        let child = ChildStdio {
            stdin,
            stdout: io.log_pipe(log, "stdout")?,
            stderr: io.log_pipe(log, "stderr")?,
        };
        Ok((child, io))
    }

    /// The container's stdin: a pipe fed from the FIFO at `path`, or /dev/null.
    fn stdin_pipe(&self, path: &str) -> Result<Stdio> {
        if path.is_empty() {
            return Ok(Stdio::null());
        }
        let (r, w) = pipe()?;
        *lock(&self.stdin_target) = Some(w);
        self.start_stdin(path)?;
        Ok(Stdio::from(r))
    }

    /// A pipe whose read end is copied to `log` as `stream`.
    fn log_pipe(&self, log: &Arc<JsonLog>, stream: &'static str) -> Result<Stdio> {
        let (r, w) = pipe()?;
        self.copy_to_log(r, log, stream)?;
        Ok(Stdio::from(w))
    }

    /// A pipe whose read end is copied to `target`; /dev/null without target.
    fn output(&self, target: &str) -> Result<Stdio> {
        if target.is_empty() {
            return Ok(Stdio::null());
        }
        let opened = open_output_now(target)?;
        let (r, w) = pipe()?;
        self.copy_out(r, target.to_string(), opened)?;
        Ok(Stdio::from(w))
    }

    /// Relays the pty master the runtime sent: stdin FIFO to it, it to stdout.
    pub fn attach_console(&self, master: File, paths: &Paths) -> Result<()> {
        if let Some(log) = &self.log {
            self.copy_to_log(master.try_clone()?, log, "stdout")?;
        } else if !paths.stdout.is_empty() {
            // None: its reader did not come in time; the copier waits for it.
            let opened = lock(&self.tty_out).take();
            self.copy_out(master.try_clone()?, paths.stdout.clone(), opened)?;
        }
        if !paths.stdin.is_empty() {
            *lock(&self.stdin_target) = Some(master.try_clone()?);
            self.start_stdin(&paths.stdin)?;
        }
        *lock(&self.console) = Some(master);
        Ok(())
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let console = lock(&self.console);
        let Some(master) = console.as_ref() else {
            bail!("the process has no terminal");
        };
        let size = nix::pty::Winsize {
            ws_row: u16::try_from(height).unwrap_or(u16::MAX),
            ws_col: u16::try_from(width).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which is valid for the call.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot resize the terminal");
        }
        Ok(())
    }

    /// Closes the container's stdin (CloseIO): the stdin copier passes on
    /// what the client wrote to the FIFO before, then drops its end.
    pub fn close_stdin(&self) {
        if let Some(cancel) = lock(&self.stdin_cancel).take() {
            let _ = nix::unistd::write(&cancel, b"x");
        }
    }

    /// Waits up to `limit` for the output copiers to drain, then drops the
    /// shim's ends (the process is gone).
    pub fn finish(&self, limit: Duration) {
        self.wait_output(limit);
        lock(&self.kept).clear();
        self.copiers.forget_fifos();
        lock(&self.tty_out).take();
        lock(&self.stdin_target).take();
        if let Some(cancel) = lock(&self.stdin_cancel).take() {
            let _ = nix::unistd::write(&cancel, b"x");
        }
        lock(&self.console).take();
    }

    /// Waits up to `limit` until the output copiers reached end of file.
    pub fn wait_output(&self, limit: Duration) {
        self.copiers.wait_ended(limit);
    }

    /// Waits up to `limit` until the output copiers have passed on all that
    /// was written before the call (the process exited, so all it wrote),
    /// also when a child it left behind keeps the output open, and the
    /// client has read it from its FIFOs. False if the limit came first.
    pub fn drain_output(&self, limit: Duration) -> bool {
        self.copiers.drain(limit)
    }

    fn start_stdin(&self, path: &str) -> Result<()> {
        let fifo = open_fifo(Path::new(path))?;
        let (cancel_r, cancel_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        *lock(&self.stdin_cancel) = Some(cancel_w);
        let target = self.stdin_target.clone();
        thread::Builder::new()
            .name("stdin".into())
            .stack_size(COPIER_STACK)
            .spawn(move || copy_stdin(fifo, cancel_r, target))
            .context("cannot start the stdin copier")?;
        Ok(())
    }

    /// Copies `from` to `target` in a thread; `opened` is the target when it
    /// could be opened in time, else the thread opens it (and may wait).
    fn copy_out(&self, mut from: File, target: String, opened: Option<Output>) -> Result<()> {
        let mut copier = self.copiers.copier()?;
        let kept = self.kept.clone();
        thread::Builder::new()
            .name("stdout".into())
            .stack_size(COPIER_STACK)
            .spawn(move || {
                let (mut to, keep) = match opened.map_or_else(|| open_output(&target), Ok) {
                    Ok((to, keep)) => (Some(to), keep),
                    Err(e) => {
                        warn!("output lost: {e:#}");
                        (None, None)
                    }
                };
                if let Some(k) = &keep {
                    copier.watch_fifo(k);
                }
                copier.copy(&mut from, &mut to);
                drop(to);
                // Kept before the copier counts as ended, so Delete drops it.
                lock(&kept).extend(keep);
                drop(copier);
            })
            .context("cannot start an output copier")?;
        Ok(())
    }

    /// Copies `from` to the json-file log as `stream` in a thread.
    fn copy_to_log(&self, mut from: File, log: &Arc<JsonLog>, stream: &'static str) -> Result<()> {
        let mut copier = self.copiers.copier()?;
        let mut to = Some(LogStream::new(log.clone(), stream));
        thread::Builder::new()
            .name("log".into())
            .stack_size(COPIER_STACK)
            .spawn(move || {
                copier.copy(&mut from, &mut to);
                // A last line without newline goes in before the end counts.
                drop(to);
                drop(copier);
            })
            .context("cannot start an output copier")?;
        Ok(())
    }
}

/// A copier's read buffer: FIRST_BUF bytes, grown to BUF once a read
/// fills it.
struct ReadBuf(Vec<u8>);

impl ReadBuf {
    fn new() -> Self {
        Self(vec![0u8; FIRST_BUF])
    }

    fn get(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// After a read of `n` bytes.
    fn read(&mut self, n: usize) {
        if n == self.0.len() && n < BUF {
            self.0.resize(BUF, 0);
        }
    }

    /// The whole BUF, for reads that must take much at once.
    fn full(&mut self) -> &mut [u8] {
        self.0.resize(BUF, 0);
        &mut self.0
    }
}

fn copy_stdin(fifo: File, cancel: OwnedFd, target: Arc<Mutex<Option<File>>>) {
    let mut buf = ReadBuf::new();
    let mut fifo = fifo;
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(cancel.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            drain(&mut fifo, buf.full(), &target);
            lock(&target).take();
            return;
        }
        match fifo.read(buf.get()) {
            Ok(0) => return,
            Ok(n) => {
                if !pass_on(&target, &buf.get()[..n]) {
                    return;
                }
                buf.read(n);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => return,
        }
    }
}

/// Passes on what the stdin FIFO holds at CloseIO (the client wrote it
/// before). Bounded, so a writer that keeps going cannot hold the copier.
fn drain(fifo: &mut File, buf: &mut [u8], target: &Mutex<Option<File>>) {
    for _ in 0..DRAIN_READS {
        match fifo.read(buf) {
            Ok(n) if n > 0 => {
                if !pass_on(target, &buf[..n]) {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Empty (WouldBlock), end of file or an error: done.
            _ => return,
        }
    }
}

/// Writes `data` to the process's stdin; false once there is none to write to.
fn pass_on(target: &Mutex<Option<File>>, data: &[u8]) -> bool {
    let mut t = lock(target);
    t.as_mut().is_some_and(|out| out.write_all(data).is_ok())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    Ok((File::from(r), File::from(w)))
}

/// Opens a FIFO without waiting for its other end (read-write never blocks).
fn open_fifo(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// An opened output target, and our own reader when it is a FIFO.
type Output = (File, Option<File>);

/// How long an RPC waits for containerd's reader of an output FIFO.
const READER_WAIT: Duration = Duration::from_secs(5);

/// Opens an output target in the RPC, so that no output (and no exit) can
/// come before containerd's reader is there: containerd opens its readers
/// before it asks for the process, and closing a FIFO that nobody reads
/// drops what was written. A FIFO whose reader does not appear within
/// READER_WAIT is left to the copy thread (None).
fn open_output_now(target: &str) -> Result<Option<Output>> {
    if target.starts_with("file://") {
        return open_output(target).map(Some);
    }
    if !Path::new(target).exists() {
        bail!("stdio {target} does not exist");
    }
    let deadline = Instant::now() + READER_WAIT;
    loop {
        // Without a reader, a non-blocking open for writing fails with ENXIO.
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(target)
        {
            Ok(w) => {
                let flags = OFlag::from_bits_truncate(fcntl(w.as_raw_fd(), FcntlArg::F_GETFL)?);
                fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK))?;
                return Ok(Some((w, Some(keep_alive_reader(target)?))));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot open {target}")),
        }
    }
}

fn keep_alive_reader(target: &str) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(target)
        .with_context(|| format!("cannot open {target}"))
}

/// Opens an output target: `file://PATH` (appended), or a FIFO. A FIFO is
/// opened for writing blocking, so data is only written once containerd's
/// reader is there (closing a FIFO nobody has open drops its data), plus a
/// reader of our own that keeps writes from failing when containerd goes away.
fn open_output(target: &str) -> Result<Output> {
    if let Some(path) = target.strip_prefix("file://") {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open log file {}", path.display()))?;
        return Ok((f, None));
    }
    let w = OpenOptions::new()
        .write(true)
        .open(target)
        .with_context(|| format!("cannot open {target}"))?;
    Ok((w, Some(keep_alive_reader(target)?)))
}

/// Starts a `binary://PATH?k=v` logging program the way containerd does:
/// stdout pipe on fd 3, stderr pipe on fd 4, fd 5 closed (or written) when ready.
fn start_logger(
    uri: &str,
    out: File,
    err: File,
    id: &str,
    namespace: &str,
    reaper: &Reaper,
) -> Result<()> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut cmd = Command::new(path);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        cmd.arg(k);
        if !v.is_empty() {
            cmd.arg(v);
        }
    }
    let (ready_r, ready_w) = pipe()?;
    let fds = [out.as_raw_fd(), err.as_raw_fd(), ready_w.as_raw_fd()];
    cmd.env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls dup2 (async-signal-safe) on fds that stay
    // open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                let target = 3 + i as i32;
                if libc::dup2(*fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    reaper
        .spawn(&mut cmd)
        .with_context(|| format!("cannot start logging binary {path}"))?;
    drop(ready_w);
    drop((out, err));
    // Wait (bounded) until the logger is ready: it closes or writes fd 5.
    let mut ready_r = ready_r;
    let mut fds = [PollFd::new(ready_r.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(10_000u16)) {
        Ok(0) => bail!("logging binary {path} did not get ready within 10 s"),
        Ok(_) => {
            let _ = ready_r.read(&mut [0u8; 1]);
            Ok(())
        }
        Err(e) => Err(e).context("waiting for the logging binary"),
    }
}
