//! Output copiers and their drain handshake. A copier passes a process's
//! stdout or stderr (a pipe, or the pty master) on to its target. An exit
//! may only be reported once what the process wrote has been passed on, but
//! a copier need never see end of file (a child the process left behind can
//! hold the pipe or the pty). So the exit asks the copiers to drain: each
//! answers once its source has nothing left to read, which means all that
//! was written before the request has been read and written to the target.
//! A FIFO target must then also be emptied by its reader: a client that
//! sees the exit may close its end and drop what it has not read (ctr does).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;
use tracing::warn;

use super::ReadBuf;

/// The output copiers of one process.
#[derive(Default)]
pub struct Copiers {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Drain requests made so far.
    asked: u64,
    copiers: Vec<Slot>,
}

struct Slot {
    /// Wakes the copier for a drain request; None once the copier ended.
    wake: Option<OwnedFd>,
    /// The last drain request the copier answered.
    answered: u64,
    /// Our own reader of the target FIFO: what it could read, the client
    /// has not read yet.
    fifo: Option<File>,
}

impl Slot {
    fn running(&self) -> bool {
        self.wake.is_some()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits while `pending` holds, up to `deadline`; false if it still does.
    fn wait_while(&self, deadline: Instant, pending: impl Fn(&State) -> bool) -> bool {
        let mut st = self.lock();
        while pending(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Copiers {
    /// Registers a copier; its thread runs `Copier::copy`.
    pub fn copier(&self) -> Result<Copier> {
        // Non-blocking both ways: a request never blocks on a full wake pipe,
        // and the copier empties it without blocking.
        let (wake_r, wake_w) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .context("cannot make a pipe for an output copier")?;
        let mut st = self.shared.lock();
        st.copiers.push(Slot {
            wake: Some(wake_w),
            answered: 0,
            fifo: None,
        });
        Ok(Copier {
            shared: self.shared.clone(),
            slot: st.copiers.len() - 1,
            wake: File::from(wake_r),
            answered: 0,
        })
    }

    /// Waits up to `limit` until every copier has passed on all that was
    /// written to its source before this call (or ended), and the readers of
    /// FIFO targets have taken it. False if the limit came first: a reader
    /// can go away, and a target that takes nothing holds its copier in a
    /// write for ever.
    pub fn drain(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let asked = {
            let mut st = self.shared.lock();
            st.asked += 1;
            for w in st.copiers.iter().filter_map(|s| s.wake.as_ref()) {
                // A full wake pipe already holds a wake-up.
                let _ = nix::unistd::write(w, b"d");
            }
            st.asked
        };
        let answered = self.shared.wait_while(deadline, |st| {
            st.copiers.iter().any(|s| s.running() && s.answered < asked)
        });
        answered && self.wait_fifos_read(deadline)
    }

    /// Polls until no FIFO target holds unread output. Polls: a pipe tells
    /// no one when it becomes empty.
    fn wait_fifos_read(&self, deadline: Instant) -> bool {
        loop {
            let unread = {
                let st = self.shared.lock();
                st.copiers
                    .iter()
                    .filter_map(|s| s.fifo.as_ref())
                    .any(|f| unread(f) > 0)
            };
            if !unread {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits up to `limit` until every copier reached end of file; false if
    /// the limit came first.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        self.shared
            .wait_while(deadline, |st| st.copiers.iter().any(Slot::running))
    }

    /// Drops our readers of the FIFO targets (the process is deleted).
    pub fn forget_fifos(&self) {
        for s in &mut self.shared.lock().copiers {
            s.fifo = None;
        }
    }
}

/// Bytes in the pipe `fifo` is an end of.
fn unread(fifo: &File) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, valid for the call.
    let rc = unsafe { libc::ioctl(fifo.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

/// A copier thread's side of the handshake. Dropping it marks the copier
/// ended.
pub struct Copier {
    shared: Arc<Shared>,
    slot: usize,
    wake: File,
    answered: u64,
}

impl Copier {
    /// Makes the drain wait for the FIFO `reader` (ours) reads from to be
    /// empty, i.e. for the client to have read it.
    pub fn watch_fifo(&self, reader: &File) {
        match reader.try_clone() {
            Ok(r) => {
                if let Some(s) = self.shared.lock().copiers.get_mut(self.slot) {
                    s.fifo = Some(r);
                }
            }
            Err(e) => warn!("exits will not wait for the output to be read: {e}"),
        }
    }

    /// Copies `from` to `to` until end of file. Without a target the output
    /// is read and dropped, so the process never blocks on a full pipe. A
    /// target is flushed before a drain request is answered (a json-file
    /// log writes out a last line that has no newline).
    pub fn copy<W: Write>(&mut self, from: &mut File, to: &mut Option<W>) {
        let mut buf = ReadBuf::new();
        loop {
            let asked = self.shared.lock().asked;
            // With a request to answer, only look whether anything is left.
            let answering = asked > self.answered;
            let timeout = if answering {
                PollTimeout::ZERO
            } else {
                PollTimeout::NONE
            };
            let mut fds = [
                PollFd::new(from.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    warn!("output copier: {e}");
                    return;
                }
            }
            // Data, end of file (HUP) or an error: the read tells which.
            let readable = fds[0].revents().is_some_and(|r| !r.is_empty());
            let woken = fds[1].revents().is_some_and(|r| !r.is_empty());
            if readable {
                match from.read(buf.get()) {
                    Ok(0) => return,
                    Ok(n) => {
                        if let Some(t) = to.as_mut() {
                            if let Err(e) = t.write_all(&buf.get()[..n]) {
                                warn!("output lost: {e}");
                                *to = None;
                            }
                        }
                        buf.read(n);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // EIO: the pty's last slave holder is gone.
                    Err(_) => return,
                }
                continue;
            }
            if woken {
                while matches!(self.wake.read(&mut [0u8; 64]), Ok(n) if n > 0) {}
            }
            if answering {
                // Nothing left: all read before `asked` was written above.
                if let Some(t) = to.as_mut() {
                    if let Err(e) = t.flush() {
                        warn!("output lost: {e}");
                    }
                }
                self.answered = asked;
                let mut st = self.shared.lock();
                if let Some(s) = st.copiers.get_mut(self.slot) {
                    s.answered = asked;
                }
                self.shared.changed.notify_all();
            }
        }
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(s) = st.copiers.get_mut(self.slot) {
            s.wake = None;
        }
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Long enough never to be reached by a copier that can go on.
    const NEVER: Duration = Duration::from_secs(60);
    /// Less than a pipe holds (64 KiB), so writing it never blocks.
    const FITS: usize = 60 * 1024;

    fn pipe() -> Result<(File, File)> {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        Ok((File::from(r), File::from(w)))
    }

    /// A copier thread from `from` to a fresh pipe; returns the pipe's read end.
    fn start(copiers: &Copiers, mut from: File) -> Result<File> {
        let (out_r, out_w) = pipe()?;
        let mut copier = copiers.copier()?;
        std::thread::spawn(move || copier.copy(&mut from, &mut Some(out_w)));
        Ok(out_r)
    }

    /// What the copier has written so far to the pipe `out`.
    fn written(out: &File) -> Result<Vec<u8>> {
        use nix::fcntl::{fcntl, FcntlArg};
        let flags = OFlag::from_bits_truncate(fcntl(out.as_raw_fd(), FcntlArg::F_GETFL)?);
        fcntl(
            out.as_raw_fd(),
            FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
        )?;
        let mut got = Vec::new();
        match (&mut &*out).read_to_end(&mut got) {
            Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e.into()),
            _ => {}
        }
        Ok(got)
    }

    #[test]
    fn drain_waits_for_all_written_before_while_the_source_stays_open() -> Result<()> {
        let copiers = Copiers::default();
        let (from, mut writer) = pipe()?;
        // Written before the copier starts: the drain must wait for all of it.
        let data = vec![b'x'; FITS];
        writer.write_all(&data)?;
        let out = start(&copiers, from)?;
        // The writer stays open, like a child the process left behind.
        assert!(copiers.drain(NEVER), "no answer to the drain request");
        assert_eq!(written(&out)?, data);
        // The copier goes on after answering.
        writer.write_all(b"later\n")?;
        assert!(copiers.drain(NEVER));
        assert_eq!(written(&out)?, b"later\n");
        drop(writer);
        assert!(copiers.wait_ended(NEVER), "no end at end of file");
        Ok(())
    }

    #[test]
    fn drain_of_a_pty_waits_while_the_slave_is_open() -> Result<()> {
        let pty = nix::pty::openpty(None, None)?;
        let copiers = Copiers::default();
        let mut slave = File::from(pty.slave);
        slave.write_all(b"on the tty")?;
        let out = start(&copiers, File::from(pty.master))?;
        assert!(copiers.drain(NEVER), "no answer to the drain request");
        // The slave's default output processing turns nothing here into CRLF.
        assert_eq!(written(&out)?, b"on the tty");
        // The last slave holder gone: the copier ends (EIO).
        drop(slave);
        assert!(copiers.wait_ended(NEVER), "no end when the slave closed");
        Ok(())
    }

    #[test]
    fn drain_after_the_end_answers_at_once() -> Result<()> {
        let copiers = Copiers::default();
        let (from, mut writer) = pipe()?;
        writer.write_all(b"last words")?;
        drop(writer);
        let out = start(&copiers, from)?;
        assert!(copiers.wait_ended(NEVER));
        assert!(copiers.drain(Duration::ZERO));
        assert_eq!(written(&out)?, b"last words");
        Ok(())
    }

    #[test]
    fn drain_waits_for_the_client_to_read_a_fifo() -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("stdout");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
        let open_reader = || {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
        };
        let mut client = open_reader()?;
        let ours = open_reader()?;
        let target = std::fs::OpenOptions::new().write(true).open(&path)?;
        let (mut from, mut writer) = pipe()?;
        let data = b"for the client";
        writer.write_all(data)?;
        let copiers = Copiers::default();
        let mut copier = copiers.copier()?;
        copier.watch_fifo(&ours);
        std::thread::spawn(move || copier.copy(&mut from, &mut Some(target)));
        // Nobody reads the FIFO yet, so it cannot be empty.
        assert!(!copiers.drain(Duration::from_millis(100)));
        let mut got = Vec::new();
        while got.len() < data.len() {
            let mut fds = [PollFd::new(client.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::NONE)?;
            let mut buf = [0u8; 64];
            match client.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        assert_eq!(got, data);
        assert!(copiers.drain(NEVER), "the FIFO was read, yet no answer");
        drop(writer);
        assert!(copiers.wait_ended(NEVER));
        Ok(())
    }

    #[test]
    fn drain_gives_up_on_a_target_that_takes_nothing() -> Result<()> {
        let copiers = Copiers::default();
        let (from, mut writer) = pipe()?;
        writer.write_all(&vec![b'x'; FITS])?;
        // Its target is full and nobody reads it: the copier blocks in a write.
        let (out_r, mut out_w) = pipe()?;
        out_w.write_all(&vec![b'y'; FITS])?;
        let mut copier = copiers.copier()?;
        let mut from = from;
        std::thread::spawn(move || copier.copy(&mut from, &mut Some(out_w)));
        assert!(!copiers.drain(Duration::from_millis(100)));
        // The target's reader gone, the copier drops the output and goes on.
        drop(out_r);
        assert!(copiers.drain(NEVER));
        drop(writer);
        assert!(copiers.wait_ended(NEVER));
        Ok(())
    }
}
