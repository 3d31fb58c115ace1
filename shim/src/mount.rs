//! The rootfs mounts containerd passes with Create (an overlay, usually),
//! mounted onto bundle/rootfs before the runtime runs and removed on delete.

use std::path::Path;

use anyhow::{bail, Context, Result};
use containerd_shim_protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

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
    if data.len() >= 4096 {
        bail!(
            "rootfs mount {kind}: options are {} bytes, over a page",
            data.len()
        );
    }
    let fstype = (kind != "bind").then_some(kind);
    let data = (!data.is_empty()).then_some(data.as_str());
    // A bind mount ignores MS_RDONLY; it takes a remount (below).
    let first = if kind == "bind" {
        flags - MsFlags::MS_RDONLY
    } else {
        flags
    };
    mount(Some(m.source.as_str()), target, fstype, first, data)
        .with_context(|| format!("cannot mount {kind} {} on {}", m.source, target.display()))?;
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
}
