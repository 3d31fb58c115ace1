//! What every command works with: the layout, the image store, the
//! containers, volumes and networks, and how to reach monitors.

use std::path::PathBuf;

use anyhow::{Context, Result};
use skiff_specs::registry::ClientOptions;
use skiff_specs::Store;

use crate::container::ContainerStore;
use crate::monitor::{sibling, MonitorSetup};
use crate::paths::Layout;
use crate::volumes::Volumes;

#[derive(Debug)]
pub struct Engine {
    pub layout: Layout,
    pub containers: ContainerStore,
    pub volumes: Volumes,
    pub monitor: MonitorSetup,
    pub registry: ClientOptions,
    /// skiffctl itself, for the monitors' on-exit cleanup command.
    pub exe: PathBuf,
}

impl Engine {
    pub fn open(root: Option<&std::path::Path>, insecure: &[String]) -> Result<Engine> {
        let layout = Layout::new(root);
        for d in [layout.containers(), layout.volumes(), layout.locks()] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        let monitor = MonitorSetup {
            shim: sibling("containerd-shim-skiff-v2"),
            runtime: sibling("skiff"),
            runtime_root: layout.runtime_root(),
            address: layout.monitor_address(),
        };
        let registry = ClientOptions {
            insecure: insecure.to_vec(),
            ..Default::default()
        };
        Ok(Engine {
            containers: ContainerStore::new(layout.containers()),
            volumes: Volumes::new(layout.volumes()),
            layout,
            monitor,
            registry,
            exe: std::env::current_exe().context("cannot find skiffctl's own path")?,
        })
    }

    pub fn store(&self) -> Result<Store> {
        Store::open(self.layout.store()).with_context(|| {
            format!(
                "cannot open the image store {}",
                self.layout.store().display()
            )
        })
    }

    /// The `--root` arguments that make another skiffctl use this engine.
    pub fn root_args(&self) -> Vec<String> {
        match self.layout.root_flag() {
            Some(r) => vec!["--root".to_owned(), r.display().to_string()],
            None => Vec::new(),
        }
    }
}
