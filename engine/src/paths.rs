//! Where the engine keeps things. Persistent state (images, layer snapshots,
//! containers, volumes, networks) lives under the root, /var/lib/skiff by
//! default, next to skiff-build's image store so built images run as they
//! are; what dies with the machine (network namespaces, the runtime's state,
//! locks, monitor sockets) lives under /run/skiff-engine. `--root DIR` keeps
//! both under DIR (tests use private roots): two engines on different roots
//! never see each other's containers.

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/skiff";
pub const DEFAULT_RUN: &str = "/run/skiff-engine";

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    run: PathBuf,
    /// Given with --root (else the defaults).
    explicit: bool,
}

impl Layout {
    /// The default layout, or everything below `root` when given.
    pub fn new(root: Option<&Path>) -> Self {
        match root {
            Some(r) => Self {
                root: r.to_path_buf(),
                run: r.join("run"),
                explicit: true,
            },
            None => Self {
                root: PathBuf::from(DEFAULT_ROOT),
                run: PathBuf::from(DEFAULT_RUN),
                explicit: false,
            },
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `--root` another skiffctl needs to see this engine, if not the default.
    pub fn root_flag(&self) -> Option<&Path> {
        self.explicit.then_some(self.root.as_path())
    }

    /// The OCI image store (skiff-build's).
    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }

    /// Unpacked layers, one directory per diff_id.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub fn containers(&self) -> PathBuf {
        self.root.join("engine/containers")
    }

    pub fn volumes(&self) -> PathBuf {
        self.root.join("engine/volumes")
    }

    /// Network definitions and address allocations.
    pub fn networks(&self) -> PathBuf {
        self.root.join("engine/networks")
    }

    pub fn run(&self) -> &Path {
        &self.run
    }

    /// The skiff runtime's --root.
    pub fn runtime_root(&self) -> PathBuf {
        self.run.join("runtime")
    }

    pub fn locks(&self) -> PathBuf {
        self.run.join("locks")
    }

    /// The address the monitors are started with; only their socket names
    /// derive from it (there is no containerd to publish events to).
    pub fn monitor_address(&self) -> PathBuf {
        self.run.join("engine.sock")
    }
}
