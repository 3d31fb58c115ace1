//! `skiff update`: change the cgroup limits of a created, running or paused
//! container, from runc's per-field flags or from an OCI linux.resources JSON
//! file (what containerd passes).
//!
//! As with runc, a field left out (or given as 0, or "" for cpuset lists)
//! keeps its current value. Only the fields given are written to cgroupfs;
//! the limits in force are recorded beside the container's state so later
//! updates (and readers) know the whole picture.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cli::GlobalOpts;
use crate::commands::kill;
use crate::container;
use crate::lock::ContainerLock;
use crate::units;

/// The limits in force, as linux.resources JSON, in the container's state directory.
const RECORD_FILE: &str = "skiff-resources.json";

const RESOURCES_HELP: &str = "\
The --resources file holds a JSON object in the OCI linux.resources format, e.g.:
  {
    \"memory\": {\"limit\": 67108864, \"reservation\": 0, \"swap\": 0},
    \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000,
            \"realtimeRuntime\": 0, \"realtimePeriod\": 0, \"cpus\": \"0-1\", \"mems\": \"0\"},
    \"blockIO\": {\"weight\": 500},
    \"pids\": {\"limit\": 100}
  }
Fields left out, 0, or \"\" keep their current values. linux.resources.devices
cannot be changed by update and is ignored.";

/// Changes the resource limits of a container
#[derive(Args, Debug)]
#[command(after_long_help = RESOURCES_HELP)]
pub struct Update {
    /// Read the new limits from FILE ("-" for standard input), an OCI
    /// linux.resources JSON object; the other limit flags are then ignored
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,

    /// Block IO weight (10 to 1000)
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,

    /// CPU CFS period in microseconds
    #[arg(long, value_name = "USECS")]
    pub cpu_period: Option<u64>,

    /// CPU CFS quota in microseconds per period (-1: no limit)
    #[arg(long, value_name = "USECS", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,

    /// CPU shares, a relative weight
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        value_name = "SHARES"
    )]
    pub cpu_shares: Option<u64>,

    /// Realtime scheduling period in microseconds (cgroup v1 only)
    #[arg(long, value_name = "USECS")]
    pub cpu_rt_period: Option<u64>,

    /// Realtime scheduling runtime in microseconds per period (cgroup v1 only)
    #[arg(long, value_name = "USECS", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,

    /// CPUs the container may use, e.g. 0-3,6
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,

    /// Memory nodes the container may use, e.g. 0-1
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,

    /// Memory limit in bytes or with a suffix (64m, 1g); -1 for no limit
    #[arg(long, value_name = "SIZE", value_parser = units::parse_limit, allow_hyphen_values = true)]
    pub memory: Option<i64>,

    /// Limit of memory plus swap, in bytes or with a suffix; -1 for unlimited swap
    #[arg(long, value_name = "SIZE", value_parser = units::parse_limit, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,

    /// Soft memory limit, in bytes or with a suffix
    #[arg(long, value_name = "SIZE", value_parser = units::parse_limit, allow_hyphen_values = true)]
    pub memory_reservation: Option<i64>,

    /// Kernel memory limit: accepted for compatibility and ignored, as by runc
    #[arg(long, value_name = "SIZE", value_parser = units::parse_limit, allow_hyphen_values = true)]
    pub kernel_memory: Option<i64>,

    /// Kernel TCP buffer limit: accepted for compatibility and ignored, as by runc
    #[arg(long, value_name = "SIZE", value_parser = units::parse_limit, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<i64>,

    /// Maximum number of processes; -1 for no limit
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,

    /// Intel RDT L3 cache schema (not supported by skiff's update)
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,

    /// Intel RDT memory bandwidth schema (not supported by skiff's update)
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,

    /// Container id
    pub id: String,
}

impl Update {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        if self.l3_cache_schema.is_some() || self.mem_bw_schema.is_some() {
            bail!(
                "--l3-cache-schema and --mem-bw-schema are not supported: \
                 skiff cannot change the Intel RDT settings of a container"
            );
        }
        container::validate_id(&self.id)?;
        // Read the request before taking the lock: stdin may be slow.
        let requested = match &self.resources {
            Some(path) => {
                if self.has_field_flags() {
                    tracing::warn!(target: "skiff", "--resources is given: the other limit flags are ignored");
                }
                read_resources(path)?
            }
            None => self.flags_as_resources(),
        };
        let patch = drop_unchangeable(normalize(requested));
        let delta: LinuxResources =
            serde_json::from_value(patch.clone()).context("invalid resource limits")?;

        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let c = container::load(&g.root, &self.id)?;
        if matches!(
            c.status(),
            ContainerStatus::Stopped | ContainerStatus::Creating
        ) {
            bail!("container {} is not running", self.id);
        }
        let cfg = YoukiConfig::load(&c.root).context("cannot read container config")?;
        let mut in_force = recorded_resources(&c);
        merge(&mut in_force, &patch);
        let disable_oom_killer = in_force
            .pointer("/memory/disableOOMKiller")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        let manager = kill::cgroup_manager(&c, &cfg.cgroup_path)?;
        manager
            .apply(&ControllerOpt {
                resources: &delta,
                disable_oom_killer,
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| anyhow!("cannot update cgroup {}: {e}", cfg.cgroup_path.display()))?;
        record_resources(&c.root, &in_force)
    }

    fn has_field_flags(&self) -> bool {
        let v = self.flags_as_resources();
        v.as_object().is_some_and(|o| !o.is_empty())
    }

    /// The per-field flags as a linux.resources JSON object.
    fn flags_as_resources(&self) -> Value {
        let mut v = json!({});
        put(&mut v, "blockIO", "weight", self.blkio_weight);
        put(&mut v, "cpu", "period", self.cpu_period);
        put(&mut v, "cpu", "quota", self.cpu_quota);
        put(&mut v, "cpu", "shares", self.cpu_shares);
        put(&mut v, "cpu", "realtimePeriod", self.cpu_rt_period);
        put(&mut v, "cpu", "realtimeRuntime", self.cpu_rt_runtime);
        put(&mut v, "cpu", "cpus", self.cpuset_cpus.clone());
        put(&mut v, "cpu", "mems", self.cpuset_mems.clone());
        put(&mut v, "memory", "limit", self.memory);
        put(&mut v, "memory", "swap", self.memory_swap);
        put(&mut v, "memory", "reservation", self.memory_reservation);
        put(&mut v, "memory", "kernel", self.kernel_memory);
        put(&mut v, "memory", "kernelTCP", self.kernel_memory_tcp);
        put(&mut v, "pids", "limit", self.pids_limit);
        v
    }
}

fn put<T: Into<Value>>(v: &mut Value, section: &str, key: &str, value: Option<T>) {
    let Some(value) = value else { return };
    if let Some(obj) = v.as_object_mut() {
        let sec = obj.entry(section).or_insert_with(|| json!({}));
        if let Some(sec) = sec.as_object_mut() {
            sec.insert(key.to_owned(), value.into());
        }
    }
}

/// Reads and checks a linux.resources JSON file ("-": standard input).
fn read_resources(path: &Path) -> Result<Value> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read resources from standard input")?;
        ("standard input".to_owned(), text)
    } else {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read resources file {}", path.display()))?;
        (path.display().to_string(), text)
    };
    let parsed: LinuxResources = serde_json::from_str(&text)
        .with_context(|| format!("resources file {name}: invalid linux.resources JSON"))?;
    serde_json::to_value(parsed).context("cannot encode resources")
}

/// Fields where runc reads 0 (or "") as "leave unchanged".
const UNSET_WHEN_ZERO: &[(&str, &str)] = &[
    ("memory", "limit"),
    ("memory", "reservation"),
    ("memory", "swap"),
    ("memory", "kernel"),
    ("memory", "kernelTCP"),
    ("cpu", "shares"),
    ("cpu", "quota"),
    ("cpu", "period"),
    ("cpu", "realtimeRuntime"),
    ("cpu", "realtimePeriod"),
    ("cpu", "cpus"),
    ("cpu", "mems"),
    ("blockIO", "weight"),
    ("pids", "limit"),
];

/// Removes nulls, "unchanged" zeros and the sections left empty.
fn normalize(mut v: Value) -> Value {
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    obj.retain(|_, s| !s.is_null());
    for (section, key) in UNSET_WHEN_ZERO {
        if let Some(sec) = obj.get_mut(*section).and_then(Value::as_object_mut) {
            let unset = match sec.get(*key) {
                Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0) || n.as_u64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset {
                sec.remove(*key);
            }
        }
    }
    obj.retain(|_, s| s.as_object().is_none_or(|o| !o.is_empty()));
    v
}

/// Drops what update cannot change, with a warning, as runc does.
fn drop_unchangeable(mut v: Value) -> Value {
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if obj.remove("devices").is_some() {
        tracing::warn!(target: "skiff", "linux.resources.devices cannot be changed by update; ignored");
    }
    if let Some(mem) = obj.get_mut("memory").and_then(Value::as_object_mut) {
        let kernel = mem.remove("kernel").is_some();
        let tcp = mem.remove("kernelTCP").is_some();
        if kernel || tcp {
            tracing::warn!(target: "skiff", "kernel memory settings are ignored and will be removed");
        }
        if mem.is_empty() {
            obj.remove("memory");
        }
    }
    v
}

/// Overlays `patch` on `base`, object by object.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, pv) in p {
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && pv.is_object() => merge(bv, pv),
                    _ => {
                        b.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// The limits in force: what the last update recorded, else the bundle's
/// linux.resources as created.
fn recorded_resources(c: &Container) -> Value {
    let record = c.root.join(RECORD_FILE);
    if let Ok(bytes) = fs::read(&record) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.is_object() => return v,
            _ => tracing::warn!(target: "skiff", "ignoring unreadable {}", record.display()),
        }
    }
    let from_bundle = fs::read(c.bundle().join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|spec| spec.pointer("/linux/resources").cloned())
        .filter(Value::is_object);
    from_bundle.unwrap_or_else(|| Value::Object(Map::new()))
}

fn record_resources(dir: &Path, resources: &Value) -> Result<()> {
    let tmp = dir.join(format!(".{RECORD_FILE}.tmp"));
    let path = dir.join(RECORD_FILE);
    fs::write(&tmp, serde_json::to_vec(resources)?)
        .and_then(|()| fs::rename(&tmp, &path))
        .with_context(|| format!("cannot record the new limits in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_and_empties_mean_unchanged() {
        let v = normalize(json!({
            "memory": {"limit": 0, "swap": 0},
            "cpu": {"cpus": "", "shares": 512},
            "pids": {"limit": 0},
            "blockIO": null,
        }));
        assert_eq!(v, json!({"cpu": {"shares": 512}}));
    }

    #[test]
    fn kernel_memory_and_devices_are_dropped() {
        let v = drop_unchangeable(json!({
            "memory": {"kernel": 1024, "kernelTCP": 1024},
            "devices": [{"allow": false, "access": "rwm"}],
            "pids": {"limit": 5},
        }));
        assert_eq!(v, json!({"pids": {"limit": 5}}));
    }

    #[test]
    fn merge_keeps_fields_not_given() {
        let mut base = json!({"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 9}});
        merge(&mut base, &json!({"memory": {"limit": 300}}));
        assert_eq!(
            base,
            json!({"memory": {"limit": 300, "swap": 200}, "pids": {"limit": 9}})
        );
    }
}
