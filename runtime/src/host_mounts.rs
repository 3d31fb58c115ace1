//! Mounts a container without a mount namespace leaves in skiff's own.
//!
//! The OCI spec allows a container without a mount namespace: its rootfs
//! mounts (/proc, /dev, /sys, cgroups, binds) are then made in the caller's
//! mount namespace, below the rootfs. runc leaves them there after delete;
//! skiff notes which mounts existed below the rootfs before create and, on
//! delete, detaches exactly the ones that came after, deepest first. Nothing
//! outside the rootfs is ever touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{umount2, MntFlags};

/// One line of /proc/self/mountinfo: the mount id and the mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    id: u64,
    point: PathBuf,
}

/// Ids of the mounts at or below `rootfs` in skiff's mount namespace now.
pub fn below(rootfs: &Path) -> Result<BTreeSet<u64>> {
    Ok(entries_below(&read()?, rootfs)
        .into_iter()
        .map(|e| e.id)
        .collect())
}

/// Detaches every mount at or below `rootfs` that is not in `before`,
/// children before their parents; the error names what could not be detached.
pub fn detach_new(rootfs: &Path, before: &BTreeSet<u64>) -> Result<()> {
    let mut new: Vec<Entry> = entries_below(&read()?, rootfs)
        .into_iter()
        .filter(|e| !before.contains(&e.id))
        .collect();
    // Deeper mount points first; among mounts stacked on one point, the
    // later (higher id) first.
    new.sort_by(|a, b| {
        let depth = |p: &Path| p.components().count();
        depth(&b.point).cmp(&depth(&a.point)).then(b.id.cmp(&a.id))
    });
    let mut failed = Vec::new();
    for e in &new {
        match umount2(&e.point, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(err) => failed.push(format!("{}: {err}", e.point.display())),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("cannot unmount {}", failed.join(", "))
    }
}

fn read() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")
}

fn entries_below(table: &str, rootfs: &Path) -> Vec<Entry> {
    table
        .lines()
        .filter_map(parse_line)
        .filter(|e| e.point.starts_with(rootfs))
        .collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let point = fields.nth(3)?;
    Some(Entry {
        id,
        point: PathBuf::from(unescape(point)),
    })
}

/// mountinfo writes space, tab, newline and backslash as \ooo octal.
fn unescape(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::ffi::OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
21 1 0:20 / / rw - ext4 /dev/vda rw
68 21 254:0 /b/rootfs /b/rootfs rw - ext4 /dev/vda rw
69 68 0:41 / /b/rootfs/proc rw - proc proc rw
70 68 0:42 / /b/rootfs/dev rw - tmpfs tmpfs rw
71 70 0:43 / /b/rootfs/dev/pts rw - devpts devpts rw
72 21 0:44 / /b/rootfs2 rw - tmpfs tmpfs rw
73 68 0:45 / /b/rootfs/with\\040space rw - tmpfs tmpfs rw";

    #[test]
    fn mounts_below_the_rootfs_only() {
        let ids: Vec<u64> = entries_below(TABLE, Path::new("/b/rootfs"))
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![68, 69, 70, 71, 73]);
    }

    #[test]
    fn octal_escapes() {
        let e = parse_line("73 68 0:45 / /b/with\\040space\\134x rw - tmpfs tmpfs rw");
        assert_eq!(e.map(|e| e.point), Some(PathBuf::from("/b/with space\\x")));
        assert_eq!(unescape("a\\04"), std::ffi::OsString::from("a\\04"));
    }
}
