//! `rm`: a stopped container's files, its runtime state and (`-v`) its
//! volumes; `-f` stops it first. As the project's engine issue asks, `-v`
//! drops the container's named volumes too (docker drops only anonymous
//! ones), unless another container uses them.

use anyhow::{bail, Result};

use crate::container::record::{Container, MountKind};
use crate::container::status;
use crate::engine::Engine;
use crate::lock;

/// Which of the container's volumes go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumePolicy {
    Keep,
    /// `--rm`: the anonymous ones (`-v /path`), as docker does.
    Anonymous,
    /// `rm -v`: also the named ones no other container uses.
    All,
}

pub fn remove(
    engine: &Engine,
    c: &mut Container,
    force: bool,
    volumes: VolumePolicy,
) -> Result<()> {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    if status::is_running(&st) {
        if !force {
            bail!(
                "You cannot remove a running container {}. Stop the container before \
                 attempting removal or force remove",
                c.id
            );
        }
        super::stop(engine, c, Some(0))?;
    }
    super::teardown(engine, c)?;
    release(engine, c, volumes)?;
    engine.containers.remove(&c.id)?;
    lock::remove(&engine.layout.locks(), &c.id);
    Ok(())
}

/// `run --rm`'s removal: the container leaves every listing (its name is
/// free) once its rootfs is unmounted; its network teardown (netavark's,
/// hundreds of milliseconds) finishes in a detached `container-cleanup`.
/// A port it published stays taken until then (see `finish_pending`).
pub fn remove_deferred(engine: &Engine, c: &mut Container, volumes: VolumePolicy) -> Result<()> {
    let dir = engine.containers.dir(&c.id);
    if status::is_running(&status::current(&dir)) {
        super::stop(engine, c, Some(0))?;
    }
    crate::rootfs::unmount(&dir.rootfs())?;
    c.active.rootfs_mounted = false;
    engine.containers.save(c)?;
    release(engine, c, volumes)?;
    engine.containers.begin_removal(&c.id)?;
    spawn_cleanup(engine, &c.id);
    Ok(())
}

/// Finishes the removal of a container set aside by `remove_deferred`;
/// nothing to do when another process did it already.
pub fn finish_removal(engine: &Engine, id: &str) -> Result<()> {
    let _lock = lock::container(&engine.layout.locks(), id)?;
    let Ok(mut c) = engine.containers.load_removing(id) else {
        return Ok(());
    };
    let errors = super::network::disconnect(engine, &mut c);
    let dir = engine.containers.removing_dir(id);
    std::fs::remove_dir_all(dir.path())?;
    lock::remove(&engine.layout.locks(), id);
    if !errors.is_empty() {
        bail!("removing container {}: {}", c.name, errors.join("; "));
    }
    Ok(())
}

/// Finishes every removal left pending (its cleanup process was killed, or
/// a new container needs the port it still holds).
pub fn finish_pending(engine: &Engine) -> Result<()> {
    for id in engine.containers.removing_ids() {
        finish_removal(engine, &id)?;
    }
    Ok(())
}

/// `skiffctl [--root R] container-cleanup ID` in its own session, not waited for.
fn spawn_cleanup(engine: &Engine, id: &str) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(&engine.exe);
    cmd.args(engine.root_args())
        .args(["container-cleanup", id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    match cmd.spawn() {
        // Reaped by init once we exit; the cleanup is not ours to wait for.
        Ok(child) => drop(child),
        Err(e) => tracing::warn!("cannot start the cleanup of {id}: {e}"),
    }
}

/// What a removed container holds outside its directory: the runtime's
/// state (left when its monitor was killed), volumes, snapshot pins.
fn release(engine: &Engine, c: &Container, volumes: VolumePolicy) -> Result<()> {
    if engine.monitor.runtime_state_root().join(&c.id).exists() {
        let _ = std::process::Command::new(&engine.monitor.runtime)
            .arg("--root")
            .arg(engine.monitor.runtime_state_root())
            .args(["delete", "--force", &c.id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    if volumes != VolumePolicy::Keep {
        let others = engine.containers.list()?;
        for m in c.host.mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let anonymous = engine.volumes.get(&m.source).is_ok_and(|v| v.anonymous);
            if volumes == VolumePolicy::Anonymous && !anonymous {
                continue;
            }
            let shared = others.iter().any(|o| {
                o.id != c.id
                    && o.host
                        .mounts
                        .iter()
                        .any(|om| om.kind == MountKind::Volume && om.source == m.source)
            });
            if !shared && engine.volumes.get(&m.source).is_ok() {
                engine.volumes.remove(&m.source)?;
            }
        }
    }
    crate::snapshots::open(engine)?.unpin(&c.id)?;
    Ok(())
}
