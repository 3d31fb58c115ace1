//! The README's main job, end to end: scripts/demo.sh builds the busybox base and the
//! two-stage example app with skiff-build and runs it with skiffctl, detached with a
//! published port, asks it over HTTP, shows its logs and removes it. Also: bundles from
//! `image unpack` get the default seccomp filter, and snapshots are shared.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Result};
use skiff_integration::bin;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin_dir() -> PathBuf {
    bin("skiff")
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The image digests the builds printed.
fn digests(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("sha256:"))
        .map(str::to_owned)
        .collect()
}

/// A host port nothing listens on now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Runs the demo on a store below `tmp`; the subnet claims of the engine root
/// it makes there are dropped afterwards (the root goes with the test).
fn demo(tmp: &Path) -> Result<Output> {
    let out = run_demo(tmp);
    skiff_integration::engine::remove_subnet_claims_under(tmp);
    out
}

fn run_demo(tmp: &Path) -> Result<Output> {
    Ok(Command::new("bash")
        .arg(repo().join("scripts/demo.sh"))
        .env("BIN_DIR", bin_dir())
        .env("DEMO_DIR", tmp.join("demo"))
        .env("SKIFF_STORE", tmp.join("store"))
        .env("DEMO_PORT", free_port()?.to_string())
        .output()?)
}

#[test]
fn demo_builds_and_runs_the_example_app() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = demo(tmp.path())?;
    let all = text(&out);
    if !out.status.success() {
        bail!("demo failed: {all}");
    }
    for want in [
        "hello from skiff: skiff, user app (uid 1000), in /app",
        "build stage: 3 source files, sha256 ",
        "sorted words: anywhere cached fast images layered run small",
        "words from the words service",
        "+ exit code: 0",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    // Again: every step that touches files comes from the cache, both images come out
    // the same (a fully cached rebuild is the same image), the app runs the same.
    let first = digests(&all);
    assert_eq!(first.len(), 2, "{all}");
    let again = demo(tmp.path())?;
    let all = text(&again);
    assert!(again.status.success(), "{all}");
    assert!(
        all.contains("COPY busybox /bin/busybox\n#2 CACHED"),
        "{all}"
    );
    assert!(all.contains("COPY src/ ./\n#3 CACHED"), "{all}");
    assert_eq!(digests(&all), first, "{all}");
    assert!(all.contains("user app (uid 1000)"), "{all}");
    Ok(())
}

/// Unpacks the demo's app image with `extra` flags and runs `sh -c script` in it.
fn run_in_app(tmp: &Path, extra: &[&str], script: &str) -> Result<Output> {
    let bundle = tmp.join(format!("bundle-{}", extra.len()));
    let out = Command::new(bin("skiff-build"))
        .args(["image", "unpack", "--store"])
        .arg(tmp.join("store"))
        .args(extra)
        .arg("skiff-demo/app")
        .arg(&bundle)
        .args(["--", "sh", "-c", script])
        .output()?;
    if !out.status.success() {
        bail!("unpack failed: {}", text(&out));
    }
    Ok(Command::new(bin("skiff"))
        .arg("--root")
        .arg(tmp.join("state"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(format!("sec-{}-{}", std::process::id(), extra.len()))
        .output()?)
}

#[test]
fn unpacked_bundles_get_the_default_seccomp_filter() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = demo(tmp.path())?;
    if !out.status.success() {
        bail!("demo failed: {}", text(&out));
    }
    // A new user namespace is the one thing here that only the filter refuses.
    let script = "grep '^Seccomp:' /proc/self/status; unshare -U true && echo userns-allowed";
    let filtered = text(&run_in_app(tmp.path(), &[], script)?);
    assert!(filtered.contains("Seccomp:\t2"), "{filtered}");
    assert!(!filtered.contains("userns-allowed"), "{filtered}");
    let open = text(&run_in_app(tmp.path(), &["--no-seccomp"], script)?);
    assert!(open.contains("Seccomp:\t0"), "{open}");
    assert!(open.contains("userns-allowed"), "{open}");
    Ok(())
}

#[test]
fn unpack_of_a_missing_image_leaves_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let bundle = tmp.path().join("bundle");
    let out = Command::new(bin("skiff-build"))
        .args(["image", "unpack", "--store"])
        .arg(tmp.path().join("store"))
        .arg("no/such-image")
        .arg(&bundle)
        .output()?;
    assert!(!out.status.success());
    let err = text(&out);
    assert!(err.contains("no/such-image"), "{err}");
    assert!(!bundle.exists(), "a half-made bundle was left behind");
    Ok(())
}

/// The snapshot directories (diff_id hex names) of the area beside the test's store.
fn snapshot_names(tmp: &Path) -> Result<Vec<String>> {
    let dir = tmp.join("snapshots/sha256");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        out.push(e?.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}

/// `image unpack` unpacks layers into the snapshot area beside the store once and copies
/// them into each bundle; `image rm` drops the snapshots no image needs any more.
#[test]
fn unpack_reuses_snapshots_and_image_rm_drops_them() -> Result<()> {
    use std::os::unix::fs::MetadataExt;

    let tmp = tempfile::tempdir()?;
    let out = demo(tmp.path())?;
    if !out.status.success() {
        bail!("demo failed: {}", text(&out));
    }
    let all = snapshot_names(tmp.path())?;
    assert!(all.len() >= 2, "{all:?}");
    let inode = |name: &str| {
        std::fs::metadata(tmp.path().join("snapshots/sha256").join(name).join("fs"))
            .map(|m| m.ino())
    };
    let before: Vec<u64> = all.iter().map(|n| inode(n)).collect::<Result<_, _>>()?;
    // A second unpack takes the same snapshots; the bundle is a copy of its own.
    let ran = run_in_app(tmp.path(), &[], "echo second unpack ok")?;
    assert!(text(&ran).contains("second unpack ok"), "{}", text(&ran));
    assert_eq!(snapshot_names(tmp.path())?, all);
    let after: Vec<u64> = all.iter().map(|n| inode(n)).collect::<Result<_, _>>()?;
    assert_eq!(before, after, "snapshots were unpacked again");
    assert!(tmp.path().join("bundle-0/rootfs/bin/busybox").is_file());

    let rm = |image: &str| -> Result<String> {
        let out = Command::new(bin("skiff-build"))
            .args(["image", "rm", "--store"])
            .arg(tmp.path().join("store"))
            .arg(image)
            .output()?;
        if !out.status.success() {
            bail!("image rm {image}: {}", text(&out));
        }
        Ok(text(&out))
    };
    // The base's layers stay while the base image is there.
    let said = rm("skiff-demo/app")?;
    assert!(said.contains("Removed "), "{said}");
    let left = snapshot_names(tmp.path())?;
    assert!(
        !left.is_empty() && left.len() < all.len(),
        "{left:?} of {all:?}"
    );
    rm("skiff-demo/busybox")?;
    assert_eq!(snapshot_names(tmp.path())?, Vec::<String>::new());
    // The bundles do not depend on them.
    assert!(tmp.path().join("bundle-0/rootfs/bin/busybox").is_file());
    Ok(())
}
