//! Read-only cgroup mounts. podman's and containerd's default specs mount
//! /sys/fs/cgroup with "ro", and runc then mounts every cgroup v1 hierarchy
//! (or cgroup2) read-only, so the container cannot raise its own limits
//! (pids.max) or make cgroups. libcontainer 0.7 ignores the option and mounts
//! the hierarchies read-write, so after create, before the process starts,
//! skiff remounts them read-only from inside the container's mount namespace.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcontainer::oci_spec::runtime::Spec;
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;

/// The destination of the spec's cgroup mount when it asks for read-only.
pub fn read_only_dest(spec: &Spec) -> Option<PathBuf> {
    spec.mounts().iter().flatten().find_map(|m| {
        let ro = m.options().iter().flatten().any(|o| o == "ro");
        (m.typ().as_deref() == Some("cgroup") && ro).then(|| m.destination().clone())
    })
}

/// Remounts read-only every cgroup or cgroup2 mount at or below `dest` in
/// the mount namespace of process `pid`.
pub fn make_read_only(pid: Pid, dest: &Path) -> Result<()> {
    let path = format!("/proc/{pid}/mountinfo");
    let table = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let targets = writable_cgroup_mounts(&table, dest);
    if targets.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = File::open(&ns_path).with_context(|| format!("cannot open {ns_path}"))?;
    // A thread of its own, with its own fs context, so only it enters the
    // container's mount namespace; it ends when the work is done.
    std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_FS).context("unshare(CLONE_FS)")?;
        setns(&ns, CloneFlags::CLONE_NEWNS).context("cannot enter the container's mounts")?;
        let flags = MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        for t in &targets {
            mount(None::<&str>, t, None::<&str>, flags, None::<&str>)
                .with_context(|| format!("cannot remount {} read-only", t.display()))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| anyhow!("the cgroup remount thread panicked"))?
}

/// Mount points from a mountinfo table: cgroup filesystems at or below
/// `dest` that are not read-only yet.
fn writable_cgroup_mounts(mountinfo: &str, dest: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = Path::new(fields.get(4)?);
            let read_only = fields.get(5)?.split(',').any(|o| o == "ro");
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = *fields.get(sep + 1)?;
            let cgroup = fstype == "cgroup" || fstype == "cgroup2";
            (cgroup && !read_only && point.starts_with(dest)).then(|| point.to_path_buf())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_writable_cgroup_mounts_below_the_destination() {
        let table = "\
1 0 0:1 / / ro,relatime - overlay overlay rw
2 1 0:2 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
3 2 0:3 /a /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
4 2 0:4 /a /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory
5 1 0:5 / /other rw - cgroup2 cgroup2 rw
6 2 0:6 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
        assert_eq!(
            writable_cgroup_mounts(table, Path::new("/sys/fs/cgroup")),
            vec![
                PathBuf::from("/sys/fs/cgroup/pids"),
                PathBuf::from("/sys/fs/cgroup/unified")
            ]
        );
    }
}
