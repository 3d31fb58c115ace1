//! The engine's on-exit command: started once the container has stopped for
//! good, detached (its own session, stdio on /dev/null) and never waited
//! for. It is still the shim's child: the reaper collects its exit as one
//! nobody claims, and spawning through the reaper keeps a stale exit of an
//! earlier process with its pid from being taken for a container's.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::reaper::Reaper;

pub fn spawn_detached(argv: &[String], reaper: &Reaper) -> Result<()> {
    let Some((prog, args)) = argv.split_first() else {
        return Ok(());
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The Child is dropped: no wait, no kill.
    reaper
        .spawn(&mut cmd)
        .with_context(|| format!("cannot start the on-exit command {prog}"))?;
    Ok(())
}
