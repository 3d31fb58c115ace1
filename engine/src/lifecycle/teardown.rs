//! Undoing what `start` set up once the container has stopped for good: the
//! network (netavark teardown, namespace), the rootfs mount, and the
//! runtime's leftovers. It runs from `stop` and `rm`, and from the monitor's
//! on-exit command when the container ends by itself.

use anyhow::{bail, Result};

use crate::container::record::Container;
use crate::container::status;
use crate::engine::Engine;

/// Tears down `c` when it is not running; every failure is reported after
/// everything was tried.
pub fn teardown(engine: &Engine, c: &mut Container) -> Result<()> {
    let dir = engine.containers.dir(&c.id);
    if status::is_running(&status::current(&dir)) {
        return Ok(());
    }
    // What the record says, and what a skiffctl killed before it could
    // record it would have left: a namespace file, a mounted rootfs.
    let nothing = c.active.netns.is_none()
        && c.active.network.is_none()
        && !c.active.rootfs_mounted
        && skiff_specs::net::Netns::open(engine.layout.run(), &c.id).is_none()
        && !crate::rootfs::is_mounted(&dir.rootfs());
    if nothing {
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let mut errors = super::network::disconnect(engine, c);
    tracing::debug!("teardown {}: network down at {:?}", c.name, t0.elapsed());
    if let Err(e) = crate::rootfs::unmount(&dir.rootfs()) {
        errors.push(format!("{e:#}"));
    } else {
        c.active.rootfs_mounted = false;
    }
    engine.containers.save(c)?;
    if !errors.is_empty() {
        bail!("cleaning up container {}: {}", c.name, errors.join("; "));
    }
    Ok(())
}

/// Brings the record in line with the container: when it stopped for good
/// and something it had is still set up (its monitor's cleanup never ran:
/// the monitor was killed, or the machine rebooted), tears it down; an
/// exited `--rm` container is removed. Returns false when it was removed.
pub fn refresh(engine: &Engine, c: &mut Container) -> Result<bool> {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    if status::is_running(&st) {
        return Ok(true);
    }
    if c.host.auto_remove && st.status == skiff_specs::monitor::Status::Exited {
        super::remove_deferred(engine, c, super::VolumePolicy::Anonymous)?;
        return Ok(false);
    }
    teardown(engine, c)?;
    Ok(true)
}
