//! `--progress tty`: RUN output is tailed in place below the step lines, and a failing RUN
//! prints what it wrote. Real builds on a busybox base the test makes.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use skiff_integration::bin;
use tempfile::TempDir;

mod common;
use common::{make_busybox_layout, unmount_below};

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-progress-test-")
            .tempdir()?;
        let f = Fixture { dir };
        fs::create_dir_all(f.path("context"))?;
        fs::create_dir_all(f.path("tmp"))?;
        f.make_base()?;
        Ok(f)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// busybox as an OCI layout at `base`, named `latest`.
    fn make_base(&self) -> Result<()> {
        make_busybox_layout(&self.path("base"), self.dir.path())
    }

    /// A tty-mode build of `dockerfile` (stderr is a pipe, so the mode is forced):
    /// (success, stderr).
    fn build(&self, dockerfile: &str) -> Result<(bool, String)> {
        fs::write(self.path("context/Dockerfile"), dockerfile)?;
        let out = Command::new(bin("skiff-build"))
            .env("TMPDIR", self.path("tmp"))
            .arg("--store")
            .arg(self.path("store"))
            .arg("--runtime")
            .arg(bin("skiff"))
            .args(["--progress", "tty", "--build-context"])
            .arg(format!(
                "busybox=oci-layout://{}:latest",
                self.path("base").display()
            ))
            .args(["-t", "p"])
            .arg(self.path("context"))
            .output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

impl Drop for Fixture {
    /// Overlay mounts a failed build may have left below our dir.
    fn drop(&mut self) {
        unmount_below(self.dir.path());
    }
}

#[test]
fn run_output_is_tailed_and_shown_when_it_fails() -> Result<()> {
    let f = Fixture::new()?;
    let (ok, stderr) =
        f.build("FROM busybox\nRUN for i in 1 2 3 4 5 6 7 8 9; do echo line$i; done\n")?;
    assert!(ok, "{stderr}");
    // Drawn in the live area (dim rows `#2 > ...`), then cleared away; the step's own
    // lines stay.
    assert!(stderr.contains("\x1b[2m#2 > line9\x1b[0m"), "{stderr:?}");
    assert!(stderr.contains("\r\x1b[J"), "{stderr:?}");
    assert!(
        stderr.contains("#2 [stage-0 2/2] RUN for i in"),
        "{stderr:?}"
    );
    assert!(stderr.contains("#2 DONE "), "{stderr:?}");
    // A successful step does not print its output for good.
    assert!(!stderr.contains("#2 line9\n"), "{stderr:?}");

    let (ok, stderr) = f.build("FROM busybox\nRUN echo first; echo boom >&2; exit 3\n")?;
    assert!(!ok, "{stderr}");
    let at = stderr.find("#2 first\n#2 boom\n#2 ERROR: ");
    assert!(at.is_some(), "{stderr:?}");
    Ok(())
}
