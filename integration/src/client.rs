//! What the podman and containerd harnesses share: their client program
//! (podman, ctr) runs with a deadline, and reaches skiff through a wrapper
//! script that logs each call, for the assertions and for failure messages.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::{output_within, skiff_bin};

/// How long one client command may take before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

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

/// A client program that drives skiff in a test (podman, ctr). A harness
/// gives its command line and the log its wrapper writes; running it and
/// checking what it did are the same for all.
pub trait Client {
    /// The program, for error messages.
    const PROGRAM: &'static str;
    /// What calls skiff on its behalf, for error messages.
    const CALLER: &'static str;

    /// The program with the harness's own flags and then ARGS, as a Command.
    fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>;

    /// Where the wrapper logs skiff's calls.
    fn calls_log(&self) -> &Path;

    /// Runs the program with ARGS (any exit code), killed after a minute.
    fn run<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output_within(self.cmd(args), TIMEOUT)
    }

    /// Runs the program and fails unless it exits 0; returns stdout.
    fn ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args)?;
        if !out.status.success() {
            bail!(
                "{} {:?} failed ({}): {}\nskiff calls:\n{}",
                Self::PROGRAM,
                args,
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.calls()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The argument lists skiff was called with so far, one a line.
    fn calls(&self) -> String {
        fs::read_to_string(self.calls_log()).unwrap_or_default()
    }

    /// Fails unless skiff was called with each of `wanted` (parts of a call).
    fn assert_called(&self, wanted: &[&str]) -> Result<()> {
        let calls = self.calls();
        for w in wanted {
            if !calls.contains(w) {
                bail!("{} never called `skiff ... {w}`:\n{calls}", Self::CALLER);
            }
        }
        Ok(())
    }
}
