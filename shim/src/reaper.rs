//! Collects every child exit (the shim is a child subreaper, so container
//! processes come here too) and hands each one to exactly one taker.
//!
//! Exits are stored with a sequence number. A taker that learns a pid late
//! (a container pid read from a pid file after `skiff create`) passes the
//! sequence number it noted before the pid could exist, so an exit that came
//! before the pid was recorded is still matched, and a stale exit of an
//! earlier process with the same pid never is.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Unclaimed exits kept at most; the oldest go first (orphans nobody asks for).
const MAX_UNCLAIMED: usize = 512;

#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub pid: i32,
    /// The exit code, or 128+N for death by signal N (what containerd reports).
    pub status: u32,
    pub at: SystemTime,
    seq: u64,
}

#[derive(Default)]
struct State {
    seq: u64,
    exits: HashMap<i32, Exit>,
}

#[derive(Default)]
pub struct Reaper {
    state: Mutex<State>,
    cond: Condvar,
}

impl Reaper {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current sequence number: exits taken with `since` = this are newer.
    pub fn mark(&self) -> u64 {
        self.lock().seq
    }

    /// Reaps every exited child; returns them for dispatch. Runs under the
    /// lock so that `spawn` (which holds it) can never lose its child to us
    /// before it knows the pid.
    pub fn reap(&self) -> Vec<Exit> {
        let mut st = self.lock();
        let mut out = Vec::new();
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code as u32),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as u32),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            st.seq += 1;
            let exit = Exit {
                pid: status.0.as_raw(),
                status: status.1,
                at: SystemTime::now(),
                seq: st.seq,
            };
            st.exits.insert(exit.pid, exit);
            out.push(exit);
        }
        if st.exits.len() > MAX_UNCLAIMED {
            let mut seqs: Vec<u64> = st.exits.values().map(|e| e.seq).collect();
            seqs.sort_unstable();
            let cut = seqs[seqs.len() - MAX_UNCLAIMED];
            st.exits.retain(|_, e| e.seq >= cut);
        }
        if !out.is_empty() {
            self.cond.notify_all();
        }
        out
    }

    /// Removes and returns the exit of `pid` if it happened after `since`.
    pub fn take(&self, pid: i32, since: u64) -> Option<Exit> {
        let mut st = self.lock();
        take_from(&mut st, pid, since)
    }

    /// Spawns `cmd`; its exit is then only ever given to `wait(pid, since)`.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, u64)> {
        let mut st = self.lock();
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // An exit stored for this pid belongs to an earlier process.
        st.exits.remove(&pid);
        Ok((child, st.seq))
    }

    /// Blocks until `pid` exits (after `since`) and returns its exit.
    pub fn wait(&self, pid: i32, since: u64) -> Exit {
        let mut st = self.lock();
        loop {
            if let Some(e) = take_from(&mut st, pid, since) {
                return e;
            }
            st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Like `wait`, for at most `limit`; None if `pid` is still running then.
    pub fn wait_timeout(&self, pid: i32, since: u64, limit: Duration) -> Option<Exit> {
        let deadline = Instant::now() + limit;
        let mut st = self.lock();
        loop {
            if let Some(e) = take_from(&mut st, pid, since) {
                return Some(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .cond
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn take_from(st: &mut State, pid: i32, since: u64) -> Option<Exit> {
    match st.exits.get(&pid) {
        Some(e) if e.seq > since => st.exits.remove(&pid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// waitpid(-1) reaps any child of the test binary: one reaper test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Reaps until `pid` has been collected (the test is the parent).
    fn reap_until(r: &Reaper, pid: i32) -> Vec<Exit> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = Vec::new();
        while Instant::now() < deadline {
            all.extend(r.reap());
            if all.iter().any(|e| e.pid == pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        all
    }

    #[test]
    fn spawned_command_exit_goes_to_its_waiter() -> std::io::Result<()> {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = Reaper::default();
        let (child, since) = r.spawn(Command::new("sh").args(["-c", "exit 3"]))?;
        let pid = child.id() as i32;
        reap_until(&r, pid);
        assert_eq!(r.wait(pid, since).status, 3);
        // Taken once only.
        assert!(r.take(pid, since).is_none());
        Ok(())
    }

    #[test]
    fn early_exit_matches_only_a_mark_taken_before_it() -> std::io::Result<()> {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = Reaper::default();
        let before = r.mark();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "kill -9 $$"]);
        let (child, _) = r.spawn(&mut cmd)?;
        let pid = child.id() as i32;
        reap_until(&r, pid);
        let after = r.mark();
        // A pid learnt late: an exit older than the mark is not this process's.
        assert!(r.take(pid, after).is_none());
        let exit = r.take(pid, before).map(|e| e.status);
        assert_eq!(exit, Some(128 + 9));
        Ok(())
    }

    #[test]
    fn timed_wait_gives_up_then_gets_the_exit() -> std::io::Result<()> {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = Reaper::default();
        let (mut child, since) = r.spawn(Command::new("sleep").arg("100"))?;
        let pid = child.id() as i32;
        assert!(r
            .wait_timeout(pid, since, Duration::from_millis(20))
            .is_none());
        child.kill()?;
        reap_until(&r, pid);
        let exit = r.wait_timeout(pid, since, Duration::from_secs(10));
        assert_eq!(exit.map(|e| e.status), Some(128 + 9));
        Ok(())
    }
}
