//! `create`: the record and the container's directories; nothing runs yet.

use std::fs;

use anyhow::{bail, Context, Result};
use skiff_specs::monitor::MonitorState;

use crate::container::record::{Active, Container};
use crate::engine::Engine;
use crate::ids;
use crate::image::{self, PullPolicy};
use crate::lock;
use crate::options::{to_record, ContainerOptions};

/// Makes the container from `image_ref` (pulled as `pull` says) and the
/// flags; returns its record. Nothing is left behind on failure.
pub fn create(
    engine: &Engine,
    opts: &ContainerOptions,
    image_ref: &str,
    cmd: &[String],
    pull: PullPolicy,
) -> Result<Container> {
    let store = engine.store()?;
    let image = image::resolve(&store, image_ref, pull, &engine.registry)?;
    let (config, host) = to_record(opts, &image.config, cmd)?;
    create_record(
        engine,
        opts.name.as_deref(),
        image_ref,
        &image,
        config,
        host,
    )
}

/// Makes the container from its Config and HostConfig (the flags' or a
/// compose service's) and the loaded image.
pub fn create_record(
    engine: &Engine,
    name: Option<&str>,
    image_ref: &str,
    image: &skiff_specs::Image,
    mut config: crate::container::record::Config,
    host: crate::container::record::HostConfig,
) -> Result<Container> {
    let store = engine.store()?;
    // What start would refuse is refused now, before anything exists.
    for p in &host.publish {
        skiff_specs::net::parse_publish(p)?;
    }
    let user_networks: Vec<&str> = std::iter::once(host.network_mode.as_str())
        .chain(host.networks.iter().map(|n| n.network.as_str()))
        .filter(|n| !matches!(*n, "bridge" | "host" | "none"))
        .collect();
    if !user_networks.is_empty() {
        let nets = super::networks(engine)?;
        for n in user_networks {
            nets.get(n)?;
        }
    }

    let _engine_lock = lock::engine(&engine.layout.locks())?;
    sweep_incomplete(engine);
    let name = match name {
        Some(n) => {
            let n = n.trim_start_matches('/');
            if !ids::valid_name(n) {
                bail!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
            }
            if let Some(other) = engine.containers.name_taken(n)? {
                bail!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{}\". \
                     You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                );
            }
            n.to_owned()
        }
        None => {
            let taken: Vec<String> = engine
                .containers
                .list()?
                .into_iter()
                .map(|c| c.name)
                .collect();
            ids::generate_name(|n| taken.iter().any(|t| t == n))?
        }
    };
    let id = ids::new_id()?;
    if config.hostname.is_empty() {
        config.hostname = ids::short(&id).to_owned();
    }
    let c = Container {
        id: id.clone(),
        name,
        created: skiff_specs::jsonlog::format_time(chrono::Utc::now()),
        image: image_ref.to_owned(),
        image_id: image.manifest.config.digest.to_string(),
        manifest: image.descriptor.clone(),
        config,
        host,
        active: Active::default(),
    };
    let dir = engine.containers.dir(&id);
    let made = (|| -> Result<()> {
        for d in [dir.bundle(), dir.rootfs(), dir.upper(), dir.work()] {
            fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        MonitorState::default()
            .write(&dir.state())
            .context("cannot write the container's state")?;
        // Pinned: skiff-build's image rm/prune never drops a container's layers.
        let snapshots = crate::snapshots::open(engine)?;
        snapshots.pin(&id, &image.config.rootfs.diff_ids)?;
        // Unpack the layers now, so start is quick and a bad image fails here.
        snapshots.prepare(&store, &c.manifest)?;
        engine.containers.save(&c)
    })();
    if let Err(e) = made {
        if let Ok(s) = crate::snapshots::open(engine) {
            let _ = s.unpin(&id);
        }
        let _ = engine.containers.remove(&id);
        return Err(e);
    }
    Ok(c)
}

/// Removes what a skiffctl killed in the middle of a create left: a
/// container directory without a record. The caller holds the engine lock,
/// under which every record is written, so such a directory is nobody's.
pub fn sweep_incomplete(engine: &Engine) {
    let Ok(entries) = fs::read_dir(engine.layout.containers()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str() else { continue };
        if id.starts_with('.') || e.path().join(crate::container::store::RECORD).exists() {
            continue;
        }
        let dir = engine.containers.dir(id);
        let _ = crate::rootfs::unmount(&dir.rootfs());
        if fs::remove_dir_all(dir.path()).is_ok() {
            if let Ok(s) = crate::snapshots::open(engine) {
                let _ = s.unpin(id);
            }
        }
    }
}
