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
    // The runtime's state of a container whose monitor was killed.
    let _ = std::process::Command::new(&engine.monitor.runtime)
        .arg("--root")
        .arg(engine.monitor.runtime_state_root())
        .args(["delete", "--force", &c.id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
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
    engine.containers.remove(&c.id)?;
    crate::snapshots::open(engine)?.unpin(&c.id)?;
    lock::remove(&engine.layout.locks(), &c.id);
    Ok(())
}
