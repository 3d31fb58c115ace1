//! What the podman and containerd harnesses share: their client program
//! (podman, ctr) runs with a deadline, and reaches skiff through a wrapper
//! script that logs each call, for the assertions and for failure messages.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::skiff_bin;

/// How long one client command may take before the test gives up on it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Writes an executable script at `path` that appends its arguments to `log`
/// (one call a line) and then runs skiff with them, after `--root ROOT` when
/// `root` is given.
pub fn write_wrapper(path: &Path, log: &Path, root: Option<&Path>) -> Result<()> {
    let root = root
        .map(|r| format!(" --root '{}'", r.display()))
        .unwrap_or_default();
    fs::write(
        path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}'{root} \"$@\"\n",
            log.display(),
            skiff_bin().display()
        ),
    )?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The calls logged at `log` so far, one a line.
pub fn calls(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_default()
}

/// What `program ARGS` printed (`out`) when it exited 0; else an error with
/// its status, its stderr and the skiff calls logged at `log`.
pub fn stdout_if_ok(program: &str, args: &[OsString], out: Output, log: &Path) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{program} {:?} failed ({}): {}\nskiff calls:\n{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            calls(log)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails unless each of `wanted` is part of a call logged at `log`; `who`
/// names the caller (podman, the shim) in the error.
pub fn assert_called(log: &Path, wanted: &[&str], who: &str) -> Result<()> {
    let calls = calls(log);
    for w in wanted {
        if !calls.contains(w) {
            bail!("{who} never called `skiff ... {w}`:\n{calls}");
        }
    }
    Ok(())
}
