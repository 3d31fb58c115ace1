//! A container's cgroup: where it is, and its statistics as containerd's
//! metrics types (io.containerd.cgroups.v1.Metrics, or v2 on a unified host).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;

use crate::events::to_any;

const ROOT: &str = "/sys/fs/cgroup";
/// USER_HZ, the unit of cpuacct.stat.
const NANOS_PER_TICK: u64 = 10_000_000;

#[derive(Debug, Clone)]
pub enum Cgroup {
    /// Relative path in every v1 hierarchy.
    V1(PathBuf),
    /// Directory in the unified hierarchy.
    V2(PathBuf),
    /// No cgroup the shim can find (none, or a systemd slice:prefix:name).
    Unknown,
}

impl Cgroup {
    /// From config.json's linux.cgroupsPath.
    pub fn from_spec(bundle: &Path) -> Cgroup {
        let Ok(text) = fs::read_to_string(bundle.join("config.json")) else {
            return Cgroup::Unknown;
        };
        let Ok(spec) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Cgroup::Unknown;
        };
        let path = spec
            .pointer("/linux/cgroupsPath")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        Self::from_path(path)
    }

    pub fn from_path(path: &str) -> Cgroup {
        if path.is_empty() || (!path.starts_with('/') && path.contains(':')) {
            return Cgroup::Unknown;
        }
        let rel = PathBuf::from(path.trim_start_matches('/'));
        if Path::new(ROOT).join("cgroup.controllers").exists() {
            Cgroup::V2(Path::new(ROOT).join(rel))
        } else {
            Cgroup::V1(rel)
        }
    }

    /// The directory of `controller` (v1) or the unified directory (v2).
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        match self {
            Cgroup::V1(rel) => Some(Path::new(ROOT).join(controller).join(rel)),
            Cgroup::V2(dir) => Some(dir.clone()),
            Cgroup::Unknown => None,
        }
    }

    /// The statistics as a protobuf Any.
    pub fn metrics(&self) -> Result<Any> {
        match self {
            Cgroup::V1(_) => Ok(to_any(&self.v1_metrics()?)?),
            Cgroup::V2(dir) => Ok(to_any(&v2_metrics(dir)?)?),
            Cgroup::Unknown => anyhow::bail!("the container's cgroup is not known"),
        }
    }

    fn v1_metrics(&self) -> Result<v1::Metrics> {
        let mut m = v1::Metrics::new();
        if let Some(d) = self.dir("pids") {
            if d.exists() {
                m.pids = Some(v1::PidsStat {
                    current: read_u64(&d.join("pids.current")),
                    limit: read_u64(&d.join("pids.max")),
                    ..Default::default()
                })
                .into();
            }
        }
        if let Some(d) = self.dir("cpuacct") {
            if d.exists() {
                let stat = read_pairs(&d.join("cpuacct.stat"));
                let per_cpu = fs::read_to_string(d.join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let usage = v1::CPUUsage {
                    total: read_u64(&d.join("cpuacct.usage")),
                    user: get(&stat, "user") * NANOS_PER_TICK,
                    kernel: get(&stat, "system") * NANOS_PER_TICK,
                    per_cpu,
                    ..Default::default()
                };
                let mut cpu = v1::CPUStat::new();
                cpu.usage = Some(usage).into();
                if let Some(c) = self.dir("cpu") {
                    let t = read_pairs(&c.join("cpu.stat"));
                    cpu.throttling = Some(v1::Throttle {
                        periods: get(&t, "nr_periods"),
                        throttled_periods: get(&t, "nr_throttled"),
                        throttled_time: get(&t, "throttled_time"),
                        ..Default::default()
                    })
                    .into();
                }
                m.cpu = Some(cpu).into();
            }
        }
        if let Some(d) = self.dir("memory") {
            if d.exists() {
                m.memory = Some(v1_memory(&d)).into();
            }
        }
        Ok(m)
    }
}

fn v1_memory(d: &Path) -> v1::MemoryStat {
    let s = read_pairs(&d.join("memory.stat"));
    let entry = |prefix: &str| v1::MemoryEntry {
        usage: read_u64(&d.join(format!("{prefix}usage_in_bytes"))),
        limit: read_u64(&d.join(format!("{prefix}limit_in_bytes"))),
        max: read_u64(&d.join(format!("{prefix}max_usage_in_bytes"))),
        failcnt: read_u64(&d.join(format!("{prefix}failcnt"))),
        ..Default::default()
    };
    v1::MemoryStat {
        cache: get(&s, "cache"),
        rss: get(&s, "rss"),
        rss_huge: get(&s, "rss_huge"),
        mapped_file: get(&s, "mapped_file"),
        dirty: get(&s, "dirty"),
        writeback: get(&s, "writeback"),
        pg_pg_in: get(&s, "pgpgin"),
        pg_pg_out: get(&s, "pgpgout"),
        pg_fault: get(&s, "pgfault"),
        pg_maj_fault: get(&s, "pgmajfault"),
        inactive_anon: get(&s, "inactive_anon"),
        active_anon: get(&s, "active_anon"),
        inactive_file: get(&s, "inactive_file"),
        active_file: get(&s, "active_file"),
        unevictable: get(&s, "unevictable"),
        hierarchical_memory_limit: get(&s, "hierarchical_memory_limit"),
        hierarchical_swap_limit: get(&s, "hierarchical_memsw_limit"),
        total_cache: get(&s, "total_cache"),
        total_rss: get(&s, "total_rss"),
        total_rss_huge: get(&s, "total_rss_huge"),
        total_mapped_file: get(&s, "total_mapped_file"),
        total_dirty: get(&s, "total_dirty"),
        total_writeback: get(&s, "total_writeback"),
        total_pg_pg_in: get(&s, "total_pgpgin"),
        total_pg_pg_out: get(&s, "total_pgpgout"),
        total_pg_fault: get(&s, "total_pgfault"),
        total_pg_maj_fault: get(&s, "total_pgmajfault"),
        total_inactive_anon: get(&s, "total_inactive_anon"),
        total_active_anon: get(&s, "total_active_anon"),
        total_inactive_file: get(&s, "total_inactive_file"),
        total_active_file: get(&s, "total_active_file"),
        total_unevictable: get(&s, "total_unevictable"),
        usage: Some(entry("memory.")).into(),
        swap: Some(entry("memory.memsw.")).into(),
        kernel: Some(entry("memory.kmem.")).into(),
        kernel_tcp: Some(entry("memory.kmem.tcp.")).into(),
        ..Default::default()
    }
}

fn v2_metrics(d: &Path) -> Result<v2::Metrics> {
    if !d.exists() {
        anyhow::bail!("cgroup {} is gone", d.display());
    }
    let mut m = v2::Metrics::new();
    m.pids = Some(v2::PidsStat {
        current: read_u64(&d.join("pids.current")),
        limit: read_u64(&d.join("pids.max")),
        ..Default::default()
    })
    .into();
    let c = read_pairs(&d.join("cpu.stat"));
    m.cpu = Some(v2::CPUStat {
        usage_usec: get(&c, "usage_usec"),
        user_usec: get(&c, "user_usec"),
        system_usec: get(&c, "system_usec"),
        nr_periods: get(&c, "nr_periods"),
        nr_throttled: get(&c, "nr_throttled"),
        throttled_usec: get(&c, "throttled_usec"),
        ..Default::default()
    })
    .into();
    let s = read_pairs(&d.join("memory.stat"));
    let mut mem = v2::MemoryStat::new();
    mem.anon = get(&s, "anon");
    mem.file = get(&s, "file");
    mem.kernel_stack = get(&s, "kernel_stack");
    mem.slab = get(&s, "slab");
    mem.sock = get(&s, "sock");
    mem.shmem = get(&s, "shmem");
    mem.file_mapped = get(&s, "file_mapped");
    mem.usage = read_u64(&d.join("memory.current"));
    mem.usage_limit = read_u64(&d.join("memory.max"));
    mem.swap_usage = read_u64(&d.join("memory.swap.current"));
    mem.swap_limit = read_u64(&d.join("memory.swap.max"));
    m.memory = Some(mem).into();
    let e = read_pairs(&d.join("memory.events"));
    m.memory_events = Some(v2::MemoryEvents {
        low: get(&e, "low"),
        high: get(&e, "high"),
        max: get(&e, "max"),
        oom: get(&e, "oom"),
        oom_kill: get(&e, "oom_kill"),
        ..Default::default()
    })
    .into();
    Ok(m)
}

/// A one-number cgroup file; "max" and unreadable files are 0 (no limit / none).
fn read_u64(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, ...).
pub fn read_pairs(path: &Path) -> Vec<(String, u64)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

pub fn get(pairs: &[(String, u64)], key: &str) -> u64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_and_empty_paths_are_unknown() {
        assert!(matches!(Cgroup::from_path(""), Cgroup::Unknown));
        assert!(matches!(
            Cgroup::from_path("system.slice:skiff:c1"),
            Cgroup::Unknown
        ));
        assert!(Cgroup::from_path("/ns/c1").dir("memory").is_some());
    }

    /// The files of a cgroup v2 directory as the kernel writes them (this host is v1, so
    /// they are written by hand here), read into containerd's v2 metrics.
    #[test]
    fn v2_files_become_v2_metrics() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        for (name, text) in [
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
            ),
            ("memory.current", "1048576\n"),
            ("memory.max", "67108864\n"),
            ("memory.stat", "anon 4096\nfile 8192\nshmem 0\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
        ] {
            fs::write(d.join(name), text)?;
        }
        let m = v2_metrics(d)?;
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (1500, 1000, 500)
        );
        assert_eq!((m.memory.usage, m.memory.usage_limit), (1 << 20, 64 << 20));
        assert_eq!((m.memory.anon, m.memory.file), (4096, 8192));
        // No swap files (swap accounting off): zero, not an error.
        assert_eq!(m.memory.swap_usage, 0);
        assert_eq!((m.memory_events.max, m.memory_events.oom_kill), (2, 1));
        // A cgroup that is gone is an error, not zeros.
        assert!(v2_metrics(&d.join("gone")).is_err());
        Ok(())
    }

    #[test]
    fn pairs_parse() -> Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("memory.stat"), "cache 4096\nrss 8192\n")?;
        let m = v1_memory(dir.path());
        assert_eq!((m.cache, m.rss), (4096, 8192));
        Ok(())
    }
}
