//! A container the shim runs: its bundle, runtime, cgroup, init process and execs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

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
    pub init: Arc<Process>,
    /// OOM kill reporting, when the memory cgroup is known.
    pub oom: OnceLock<Arc<Oom>>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
}

impl Container {
    pub fn new(
        id: &str,
        bundle: PathBuf,
        runtime: Runtime,
        rootfs: Option<PathBuf>,
        init: Arc<Process>,
    ) -> Self {
        Self {
            id: id.to_string(),
            cgroup: Cgroup::from_spec(&bundle),
            bundle,
            runtime,
            rootfs,
            init,
            oom: OnceLock::new(),
            execs: Mutex::new(HashMap::new()),
        }
    }

    pub fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The init process for an empty exec id, else that exec.
    pub fn process(&self, exec_id: &str) -> Option<Arc<Process>> {
        if exec_id.is_empty() {
            return Some(self.init.clone());
        }
        self.execs().get(exec_id).cloned()
    }

    /// Every process: init first.
    pub fn processes(&self) -> Vec<Arc<Process>> {
        let mut all = vec![self.init.clone()];
        all.extend(self.execs().values().cloned());
        all
    }
}
