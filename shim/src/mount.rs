//! The rootfs mounts containerd passes with Create (an overlay, usually),
//! mounted onto bundle/rootfs before the runtime runs and removed on delete.

use std::ffi::OsStr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use containerd_shim_protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use skiff_specs::snapshots::mount_overlay_data;

/// The kernel copies at most a page of mount data (with its final NUL).
const PAGE: usize = 4096;

/// Mounts `mounts` in order onto `rootfs`; undoes them on failure.
pub fn mount_all(mounts: &[Mount], rootfs: &Path) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(rootfs)
        .with_context(|| format!("cannot create {}", rootfs.display()))?;
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, rootfs) {
            for _ in 0..i {
                unmount(rootfs);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let (mut flags, data) = parse_options(&m.options);
    let kind = m.type_.as_str();
    if kind == "bind" {
        flags |= MsFlags::MS_BIND;
    }
    let fstype = (kind != "bind").then_some(kind);
    // A bind mount ignores MS_RDONLY; it takes a remount (below).
    let first = if kind == "bind" {
        flags - MsFlags::MS_RDONLY
    } else {
        flags
    };
    let failed = || format!("cannot mount {kind} {} on {}", m.source, target.display());
    if kind == "overlay" {
        // Many layers give options over a page; specs makes the lowerdirs short.
        mount_overlay_data(target, first, OsStr::new(&data)).with_context(failed)?;
    } else if data.len() < PAGE {
        let data = (!data.is_empty()).then_some(data.as_str());
        mount(Some(m.source.as_str()), target, fstype, first, data).with_context(failed)?;
    } else {
        bail!(
            "rootfs mount {kind}: options are {} bytes, over a page",
            data.len()
        );
    }
    // A read-only bind needs a remount.
    if kind == "bind" && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("cannot make {} read-only", target.display()))?;
    }
    Ok(())
}

/// Mount flags and the filesystem data string of a mount's options.
fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data.join(","))
}

/// Unmounts the top mount at `rootfs` (lazily if it is busy).
pub fn unmount(rootfs: &Path) {
    if umount2(rootfs, MntFlags::empty()).is_err() {
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
    }
}

/// Unmounts everything stacked on `rootfs`.
pub fn unmount_all(rootfs: &Path) {
    for _ in 0..32 {
        if !is_mountpoint(rootfs) {
            return;
        }
        unmount(rootfs);
    }
}

fn is_mountpoint(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    // mountinfo escapes spaces and the like in octal.
    let want = want.replace(' ', "\\040");
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_split_into_flags_and_data() {
        let opts: Vec<String> = ["ro", "nosuid", "index=off", "lowerdir=/a:/b"]
            .map(String::from)
            .into();
        let (flags, data) = parse_options(&opts);
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(data, "index=off,lowerdir=/a:/b");
        let (flags, _) = parse_options(&["rbind".to_string(), "rw".to_string()]);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }

    /// Unmounts what is left on the path when dropped, even after a failure.
    struct Unmount(std::path::PathBuf);

    impl Drop for Unmount {
        fn drop(&mut self) {
            unmount_all(&self.0);
        }
    }

    #[test]
    fn overlay_of_many_long_lowerdirs_mounts() -> anyhow::Result<()> {
        let tmp = tempfile::Builder::new()
            .prefix("skiff-shim-mount-")
            .tempdir()?;
        let snapshots = tmp
            .path()
            .join("io.containerd.snapshotter.v1.overlayfs/snapshots");
        let mut lower = Vec::new();
        for i in 0..120 {
            let dir = snapshots.join(format!("{i}/fs"));
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("layer{i}")), "")?;
            lower.push(dir.display().to_string());
        }
        let upper = snapshots.join("120/fs");
        let work = snapshots.join("120/work");
        std::fs::create_dir_all(&upper)?;
        std::fs::create_dir_all(&work)?;
        let m = Mount {
            type_: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("lowerdir={}", lower.join(":")),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
            ..Default::default()
        };
        assert!(m.options[1].len() > 2 * PAGE, "the lowerdirs fit a page");
        let rootfs = tmp.path().join("rootfs");
        let _unmount = Unmount(rootfs.clone());
        let cwd = std::env::current_dir()?;
        mount_all(&[m], &rootfs)?;
        assert!(rootfs.join("layer0").exists() && rootfs.join("layer119").exists());
        std::fs::write(rootfs.join("new"), "")?;
        assert!(
            upper.join("new").exists(),
            "the write did not reach upperdir"
        );
        assert_eq!(std::env::current_dir()?, cwd, "the shim's cwd moved");
        Ok(())
    }
}
