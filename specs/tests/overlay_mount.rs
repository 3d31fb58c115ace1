//! Overlay mounts whose options pass a page: 120 long lowerdirs, as containerd's
//! snapshotter names them (their shared directory makes them short) and as the snapshot
//! area does (64-hex names: too long even then, so they go by descriptor).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::layers::Unmount;
use skiff_specs::snapshots::{mount_overlay, overlay_options};
use skiff_specs::Digest;

const LAYERS: usize = 120;

/// Makes 120 lower dirs named by `name(i)` below `base`, each with a file of its own and
/// a shared one that the top layer (index 0) must win.
fn lowers(base: &Path, name: impl Fn(usize) -> String) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for i in 0..LAYERS {
        let dir = base.join(name(i));
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("layer{i}")), "")?;
        fs::write(dir.join("shared"), format!("{i}"))?;
        out.push(dir);
    }
    Ok(out)
}

fn check(lowers: &[PathBuf], tmp: &Path, writable: bool) -> anyhow::Result<()> {
    let upper = tmp.join("upper");
    let work = tmp.join("work");
    let merged = tmp.join("merged");
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d)?;
    }
    let options = overlay_options(lowers, Some(&upper), Some(&work));
    assert!(options.len() > 2 * 4096, "the lowerdirs fit a page");
    let _unmount = Unmount(merged.clone());
    let cwd = std::env::current_dir()?;
    if writable {
        mount_overlay(lowers, Some(&upper), Some(&work), &merged)?;
    } else {
        mount_overlay(lowers, None, None, &merged)?;
    }
    assert_eq!(std::env::current_dir()?, cwd, "the process's cwd moved");
    assert!(merged.join("layer0").exists() && merged.join(format!("layer{}", LAYERS - 1)).exists());
    assert_eq!(
        fs::read_to_string(merged.join("shared"))?,
        "0",
        "top layer first"
    );
    let wrote = fs::write(merged.join("new"), "");
    assert_eq!(wrote.is_ok(), writable, "{wrote:?}");
    assert_eq!(upper.join("new").exists(), writable);
    Ok(())
}

#[test]
fn containerd_style_lowerdirs_share_a_directory() -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-overlay-")
        .tempdir()?;
    let snapshots = tmp
        .path()
        .join("io.containerd.snapshotter.v1.overlayfs/snapshots");
    let lowers = lowers(&snapshots, |i| format!("{i}/fs"))?;
    check(&lowers, tmp.path(), true)
}

#[test]
fn snapshot_area_lowerdirs_go_by_descriptor() -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-overlay-")
        .tempdir()?;
    let area = tmp.path().join("snapshots/sha256");
    let hex = |i: usize| Digest::sha256_of(&i.to_le_bytes()).hex().to_owned();
    let lowers = lowers(&area, |i| format!("{}/fs", hex(i)))?;
    check(&lowers, &tmp.path().join("rw"), true)?;
    check(&lowers, &tmp.path().join("ro"), false)
}
