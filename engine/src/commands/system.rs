//! `system df`, `system prune` and `info`.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use skiff_specs::{Digest, Image, Platform, Store};

use crate::container::{status, Container};
use crate::engine::Engine;
use crate::lock;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df,
    /// Remove stopped containers, unused networks, dangling images (and more)
    Prune {
        /// Remove all unused images, not just dangling ones
        #[arg(short = 'a', long)]
        all: bool,
        /// Prune volumes too
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Display system-wide information
    Info,
}

/// Bytes below `path` (not following links).
pub fn du(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| du(&e.path()))
        .sum::<u64>()
        + md.len()
}

/// The layer diff_ids (snapshots) images and containers still need.
pub fn needed_layers(store: &Store, containers: &[Container]) -> HashSet<Digest> {
    let mut keep = HashSet::new();
    for i in store.list().unwrap_or_default() {
        if let Ok(img) = Image::load(store, &i.descriptor, &Platform::host()) {
            keep.extend(img.config.rootfs.diff_ids);
        }
    }
    for c in containers {
        if let Ok(img) = Image::load(store, &c.manifest, &Platform::host()) {
            keep.extend(img.config.rootfs.diff_ids);
        }
    }
    keep
}

pub fn run(engine: &Engine, cmd: SystemCommand) -> Result<i32> {
    match cmd {
        SystemCommand::Df => df(engine),
        SystemCommand::Prune {
            all,
            volumes,
            force: _,
        } => prune(engine, all, volumes),
        SystemCommand::Info => info(engine),
    }
}

fn df(engine: &Engine) -> Result<i32> {
    let store = engine.store()?;
    let containers = engine.containers.list()?;
    let images = store.list()?;
    let used: HashSet<String> = containers
        .iter()
        .map(|c| c.manifest.digest.to_string())
        .collect();
    let mut image_bytes = 0u64;
    let mut reclaim_images = 0u64;
    for i in &images {
        let size: u64 = Image::load(&store, &i.descriptor, &Platform::host())
            .map(|img| img.manifest.layers.iter().map(|l| l.size).sum())
            .unwrap_or(0);
        image_bytes += size;
        if !used.contains(&i.descriptor.digest.to_string()) {
            reclaim_images += size;
        }
    }
    let active_images = images
        .iter()
        .filter(|i| used.contains(&i.descriptor.digest.to_string()))
        .count();
    let mut container_bytes = 0;
    let mut reclaim_containers = 0;
    let mut active_containers = 0;
    for c in &containers {
        let size = du(&engine.containers.dir(&c.id).upper());
        container_bytes += size;
        if status::is_running(&status::current(&engine.containers.dir(&c.id))) {
            active_containers += 1;
        } else {
            reclaim_containers += size;
        }
    }
    let vols = engine.volumes.list()?;
    let in_use = |name: &str| {
        containers
            .iter()
            .any(|c| c.host.mounts.iter().any(|m| m.source == name))
    };
    let vol_bytes: u64 = vols.iter().map(|v| du(&v.mountpoint)).sum();
    let reclaim_vols: u64 = vols
        .iter()
        .filter(|v| !in_use(&v.name))
        .map(|v| du(&v.mountpoint))
        .sum();
    let snap_bytes: u64 = crate::snapshots::open(engine)?
        .usage()?
        .iter()
        .map(|(_, b)| *b)
        .sum();
    let pct = |r: u64, t: u64| (r * 100).checked_div(t).unwrap_or(0);
    println!(
        "{:<16}{:<10}{:<10}{:<12}RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    println!(
        "{:<16}{:<10}{:<10}{:<12}{} ({}%)",
        "Images",
        images.len(),
        active_images,
        super::images::human_size(image_bytes),
        super::images::human_size(reclaim_images),
        pct(reclaim_images, image_bytes)
    );
    println!(
        "{:<16}{:<10}{:<10}{:<12}{} ({}%)",
        "Containers",
        containers.len(),
        active_containers,
        super::images::human_size(container_bytes),
        super::images::human_size(reclaim_containers),
        pct(reclaim_containers, container_bytes)
    );
    println!(
        "{:<16}{:<10}{:<10}{:<12}{} ({}%)",
        "Local Volumes",
        vols.len(),
        vols.iter().filter(|v| in_use(&v.name)).count(),
        super::images::human_size(vol_bytes),
        super::images::human_size(reclaim_vols),
        pct(reclaim_vols, vol_bytes)
    );
    println!(
        "{:<16}{:<10}{:<10}{}",
        "Layer Snapshots",
        "",
        "",
        super::images::human_size(snap_bytes)
    );
    Ok(0)
}

fn prune(engine: &Engine, all: bool, volumes: bool) -> Result<i32> {
    let mut reclaimed = 0u64;
    println!("Deleted Containers:");
    for found in engine.containers.list()? {
        let Ok(_l) = lock::container(&engine.layout.locks(), &found.id) else {
            continue;
        };
        let Ok(mut c) = engine.containers.load(&found.id) else {
            continue;
        };
        if status::is_running(&status::current(&engine.containers.dir(&c.id))) {
            continue;
        }
        reclaimed += du(&engine.containers.dir(&c.id).upper());
        if crate::lifecycle::remove(engine, &mut c, false, crate::lifecycle::VolumePolicy::Keep)
            .is_ok()
        {
            println!("{}", c.id);
        }
    }
    if let Ok(nets) = crate::lifecycle::networks(engine) {
        let containers = engine.containers.list()?;
        println!("Deleted Networks:");
        for n in nets.list()? {
            let used = containers.iter().any(|c| {
                c.host.network_mode == n.name || c.host.networks.iter().any(|e| e.network == n.name)
            });
            if !used
                && !matches!(n.name.as_str(), "bridge" | "host" | "none")
                && nets.remove(&n.name).is_ok()
            {
                println!("{}", n.name);
            }
        }
    }
    if volumes {
        println!("Deleted Volumes:");
        let containers = engine.containers.list()?;
        for v in engine.volumes.list()? {
            if !containers
                .iter()
                .any(|c| c.host.mounts.iter().any(|m| m.source == v.name))
            {
                reclaimed += du(&v.mountpoint);
                engine.volumes.remove(&v.name)?;
                println!("{}", v.name);
            }
        }
    }
    let store = engine.store()?;
    let containers = engine.containers.list()?;
    let used: HashSet<String> = containers
        .iter()
        .map(|c| c.manifest.digest.to_string())
        .collect();
    println!("Deleted Images:");
    for i in store.list()? {
        if used.contains(&i.descriptor.digest.to_string()) {
            continue;
        }
        let remove = all || i.name.is_none();
        if remove {
            let reference = i
                .name
                .clone()
                .unwrap_or_else(|| i.descriptor.digest.to_string());
            if store.remove(&reference).is_ok() {
                println!("deleted: {reference}");
            }
        }
    }
    // Images containers use stay in the index so gc keeps their blobs.
    for c in &containers {
        if !store
            .list()?
            .iter()
            .any(|i| i.descriptor.digest == c.manifest.digest)
        {
            store.add_unnamed(&c.manifest)?;
        }
    }
    reclaimed += store.gc()?.freed_bytes;
    let keep = needed_layers(&store, &containers);
    reclaimed += crate::snapshots::open(engine)?.gc(&keep)?.freed_bytes;
    println!(
        "\nTotal reclaimed space: {}",
        super::images::human_size(reclaimed)
    );
    Ok(0)
}

fn info(engine: &Engine) -> Result<i32> {
    let containers = engine.containers.list()?;
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    for c in &containers {
        match status::current(&engine.containers.dir(&c.id)).status {
            skiff_specs::monitor::Status::Running | skiff_specs::monitor::Status::Restarting => {
                running += 1
            }
            skiff_specs::monitor::Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = engine
        .store()
        .map(|s| s.list().map(|l| l.len()).unwrap_or(0))
        .unwrap_or(0);
    let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    println!("Server:");
    println!(" Containers: {}", containers.len());
    println!("  Running: {running}");
    println!("  Paused: {paused}");
    println!("  Stopped: {stopped}");
    println!(" Images: {images}");
    println!(" Server Version: skiffctl {}", env!("CARGO_PKG_VERSION"));
    println!(" Storage Driver: overlay");
    println!(" Logging Driver: json-file");
    println!(" Cgroup Version: {}", if cgroup_v2 { 2 } else { 1 });
    println!(" Runtimes: skiff ({})", engine.monitor.runtime.display());
    println!(" Monitor: {}", engine.monitor.shim.display());
    println!(" Network: bridge host none (netavark)");
    println!(" Root Dir: {}", engine.layout.root().display());
    println!(" Run Dir: {}", engine.layout.run().display());
    Ok(0)
}
