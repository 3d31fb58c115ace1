//! Last-resort cleanup for the client harnesses (podman, containerd): what
//! their Drop runs when a test failed half-way and left things behind.

use std::fs;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{cgroup_dirs_at, mounts_under};

/// Lazily unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_all(dir: &Path) {
    for m in mounts_under(dir).iter().rev() {
        let path = m.trim_start_matches("mount ");
        let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `kill_cgroup_tree` for cgroup path `rel` in every hierarchy.
pub fn kill_cgroups_at(rel: &str) {
    for dir in cgroup_dirs_at(rel) {
        kill_cgroup_tree(&dir);
    }
}

/// Thaws, kills and removes a cgroup and its children, deepest first.
pub fn kill_cgroup_tree(dir: &Path) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            kill_cgroup_tree(&e.path());
        }
    }
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    for _ in 0..200 {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
