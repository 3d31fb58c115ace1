//! Running a command on a pseudo-terminal of its own, for programs that want
//! one (`ctr ... --tty`), and collecting all it wrote there.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

/// Runs `cmd` with a new pty as its stdin, stdout and stderr, killed after
/// `timeout`. Its stdout is all it wrote to the terminal, read until the
/// last holder of the terminal is gone, so nothing at the end is cut off.
pub fn output_on_pty(mut cmd: Command, timeout: Duration) -> Result<Output> {
    // Close-on-exec from the start: commands other threads start meanwhile
    // must not hold this terminal.
    let mut master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("cannot open a pty")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let name = ptsname_r(&master).context("ptsname")?;
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .with_context(|| format!("cannot open {name}"))?;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().context("cannot spawn")?;
    // Our copies of the slave: the child's are the last.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO: every holder of the slave is gone.
                Err(_) => break,
            }
        }
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {timeout:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = reader
        .join()
        .map_err(|_| anyhow!("the pty reader panicked"))?;
    Ok(Output {
        status,
        stdout,
        stderr: Vec::new(),
    })
}
