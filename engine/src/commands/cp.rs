//! `cp`: files between a container and the host, both ways.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::container::{status, Container};
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH or a host path
    pub src: String,
    /// A host path or CONTAINER:DEST_PATH
    pub dest: String,
}

/// `name:path` when `s` names a container (a host path starting with `/`
/// or `.` never does).
fn container_part(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
}

/// The container's root as the container sees it: through its init while it
/// runs (its volumes included); else its filesystem mounted in a mount
/// namespace of this process's own, which ends with it.
fn root_of(engine: &Engine, c: &Container) -> Result<PathBuf> {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    if status::is_running(&st) && st.pid > 0 {
        return Ok(PathBuf::from(format!("/proc/{}/root", st.pid)));
    }
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .context("making the mount namespace private")?;
    let store = engine.store()?;
    let lowers = crate::snapshots::open(engine)?.prepare(&store, &c.manifest)?;
    let rootfs = dir.rootfs();
    if !crate::rootfs::is_mounted(&rootfs) {
        skiff_specs::snapshots::mount_overlay(
            &lowers,
            Some(&dir.upper()),
            Some(&dir.work()),
            &rootfs,
        )?;
    }
    Ok(rootfs)
}

pub fn run(engine: &Engine, a: CpArgs) -> Result<i32> {
    match (container_part(&a.src), container_part(&a.dest)) {
        (Some((name, path)), None) => {
            let c = engine.containers.find(name)?;
            let root = root_of(engine, &c)?;
            crate::copy::copy_out(&root, path, &PathBuf::from(&a.dest))?;
        }
        (None, Some((name, path))) => {
            let c = engine.containers.find(name)?;
            let root = root_of(engine, &c)?;
            crate::copy::copy_in(&PathBuf::from(&a.src), &root, path)?;
        }
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    }
    Ok(0)
}
