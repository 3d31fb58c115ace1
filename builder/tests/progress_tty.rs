//! `--progress tty`: RUN output is tailed in place below the step lines, and a failing RUN
//! prints what it wrote. Real builds on a busybox base the test makes.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use skiff_integration::{bin, make_rootfs};
use skiff_specs::media_type::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use skiff_specs::{ContainerConfig, ImageConfig, ImageManifest, Platform, RootFs, Store};
use tempfile::TempDir;

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
        let rootfs = self.path("base-rootfs");
        make_rootfs(&rootfs)?;
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &rootfs)?;
        let layer = builder.into_inner()?;
        fs::remove_dir_all(&rootfs)?;
        let layout = Store::open(self.path("base"))?;
        let (digest, size) = layout.put_blob(&layer[..], None, None)?;
        let host = Platform::host();
        let config = ImageConfig {
            architecture: host.architecture,
            os: host.os,
            config: Some(ContainerConfig {
                env: Some(vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()]),
                ..ContainerConfig::default()
            }),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![digest.clone()],
            },
            ..ImageConfig::default()
        };
        let config = layout.put_json(OCI_CONFIG, &config)?;
        let layer = skiff_specs::Descriptor::new(OCI_LAYER_TAR, digest, size);
        let manifest =
            layout.put_json(OCI_MANIFEST, &ImageManifest::new_oci(config, vec![layer]))?;
        layout.tag("latest", &manifest)?;
        Ok(())
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
        let prefix = self.dir.path().to_string_lossy().into_owned();
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
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
