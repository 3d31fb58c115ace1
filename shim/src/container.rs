//! A container the shim runs: its bundle, runtime, cgroup, init process and execs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::monitor::Monitor;
use crate::oom::Oom;
use crate::process::Process;
use crate::runtime::Runtime;
use crate::stats::Cgroup;

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub cgroup: Cgroup,
    /// The shim mounted containerd's rootfs mounts here (and unmounts them).
    pub rootfs: Option<PathBuf>,
    /// The init of the current run (a restart replaces it).
    init: Mutex<Arc<Process>>,
    /// No pid namespace of its own: the init's exit does not end the rest.
    pub kill_all_on_exit: bool,
    /// OOM kill reporting of the current run, when the memory cgroup is known.
    oom: Mutex<Option<Arc<Oom>>>,
    /// Monitor mode (monitor.json in the bundle).
    pub monitor: Option<Arc<Monitor>>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
}

impl Container {
    pub fn new(
        id: &str,
        bundle: PathBuf,
        runtime: Runtime,
        rootfs: Option<PathBuf>,
        init: Arc<Process>,
        monitor: Option<Arc<Monitor>>,
    ) -> Self {
        Self {
            id: id.to_string(),
            cgroup: Cgroup::from_spec(&bundle),
            kill_all_on_exit: !own_pid_namespace(&bundle),
            bundle,
            runtime,
            rootfs,
            init: Mutex::new(init),
            oom: Mutex::new(None),
            monitor,
            execs: Mutex::new(HashMap::new()),
        }
    }

    pub fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn init(&self) -> Arc<Process> {
        self.init.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The init of a new run of the container.
    pub fn set_init(&self, init: Arc<Process>) {
        *self.init.lock().unwrap_or_else(|p| p.into_inner()) = init;
    }

    pub fn oom(&self) -> Option<Arc<Oom>> {
        self.oom.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_oom(&self, oom: Arc<Oom>) {
        *self.oom.lock().unwrap_or_else(|p| p.into_inner()) = Some(oom);
    }

    /// The init process for an empty exec id, else that exec.
    pub fn process(&self, exec_id: &str) -> Option<Arc<Process>> {
        if exec_id.is_empty() {
            return Some(self.init());
        }
        self.execs().get(exec_id).cloned()
    }

    /// Every process: init first.
    pub fn processes(&self) -> Vec<Arc<Process>> {
        let mut all = vec![self.init()];
        all.extend(self.execs().values().cloned());
        all
    }
}

/// Whether config.json gives the container a new pid namespace.
fn own_pid_namespace(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(bundle.join("config.json")) else {
        return true;
    };
    let Ok(spec) = serde_json::from_str::<serde_json::Value>(&text) else {
        return true;
    };
    let namespaces = spec
        .pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .cloned()
        .unwrap_or_default();
    namespaces.iter().any(|ns| {
        ns.get("type").and_then(|t| t.as_str()) == Some("pid")
            && ns
                .get("path")
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .is_empty()
    })
}
