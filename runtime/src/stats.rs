//! A container's resource statistics in the shape `runc events` prints
//! (runc 1.1 types/events.go), converted from libcgroups' own statistics.
//!
//! The field names, the omitted zero values (Go's `omitempty`) and the units
//! (nanoseconds for CPU time, bytes for memory) follow runc, so tools that
//! decode runc's events decode skiff's.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{anyhow, Result};
use libcgroups::common::{AnyCgroupManager, CgroupManager};
use libcgroups::stats as cg;
use libcgroups::v1::ControllerType;
use serde::Serialize;

use crate::cgroupfs::{self, CgroupDir};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Debug, Default)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// runc fills this only for veth pairs it set up itself, which it never
    /// does for OCI bundles, so it is always null.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Serialize, Debug, Default)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Serialize, Debug, Default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Debug, Default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    // runc's tag really is "ioQueueRecursive".
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Debug, Default)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT statistics are not collected; runc prints `{}` when it has none.
#[derive(Serialize, Debug, Default)]
pub struct IntelRdt {}

/// Reads the statistics of the cgroup `manager` drives (at `cgroup_path`).
pub fn collect(manager: &AnyCgroupManager, cgroup_path: &Path) -> Result<Stats> {
    let raw = manager
        .stats()
        .map_err(|e| anyhow!("cannot read cgroup statistics: {e}"))?;
    let unified = cgroupfs::is_unified()?;
    let mut stats = convert(raw, unified);
    match cgroupfs::controller_dir(cgroup_path, ControllerType::CpuSet) {
        Ok(dir) => stats.cpuset = read_cpuset(&dir),
        Err(e) => tracing::debug!("no cpuset statistics: {e:#}"),
    }
    Ok(stats)
}

/// Converts libcgroups' statistics; `unified` says they came from cgroup v2,
/// whose files use other units than v1's.
pub fn convert(s: cg::Stats, unified: bool) -> Stats {
    Stats {
        cpu: convert_cpu(s.cpu, unified),
        cpuset: CpuSet::default(),
        memory: convert_memory(s.memory, unified),
        pids: Pids {
            current: s.pids.current,
            limit: s.pids.limit,
        },
        blkio: convert_blkio(s.blkio),
        hugetlb: s
            .hugetlb
            .into_iter()
            .map(|(size, h)| {
                let entry = Hugetlb {
                    usage: h.usage,
                    max: h.max_usage,
                    failcnt: h.fail_count,
                };
                (size, entry)
            })
            .collect(),
        intel_rdt: IntelRdt {},
        network_interfaces: None,
    }
}

fn convert_cpu(c: cg::CpuStats, unified: bool) -> Cpu {
    let u = c.usage;
    // v2's cpu.stat counts microseconds; v1's cpuacct.stat counts clock ticks
    // for user and system time, while its other files count nanoseconds.
    let (total, user, kernel, throttled) = if unified {
        (
            u.usage_total.saturating_mul(1000),
            u.usage_user.saturating_mul(1000),
            u.usage_kernel.saturating_mul(1000),
            c.throttling.throttled_time.saturating_mul(1000),
        )
    } else {
        (
            u.usage_total,
            ticks_to_ns(u.usage_user),
            ticks_to_ns(u.usage_kernel),
            c.throttling.throttled_time,
        )
    };
    Cpu {
        usage: CpuUsage {
            total,
            percpu: u.per_core_usage_total,
            percpu_kernel: u.per_core_usage_kernel,
            percpu_user: u.per_core_usage_user,
            kernel,
            user,
        },
        throttling: Throttling {
            periods: c.throttling.periods,
            throttled_periods: c.throttling.throttled_periods,
            throttled_time: throttled,
        },
    }
}

fn ticks_to_ns(ticks: u64) -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&hz| hz > 0)
        .map(|hz| hz as u64)
        .unwrap_or(100);
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn entry(m: &cg::MemoryData) -> MemoryEntry {
    MemoryEntry {
        limit: m.limit,
        usage: m.usage,
        max: m.max_usage,
        failcnt: m.fail_count,
    }
}

fn convert_memory(m: cg::MemoryStats, unified: bool) -> Memory {
    let raw: BTreeMap<String, u64> = m.stats.into_iter().collect();
    let mut swap = entry(&m.memswap);
    let mut cache = m.cache;
    if unified {
        // v1 reports swap as memory+swap; runc reports v2 the same way.
        swap.usage = m.memswap.usage.saturating_add(m.memory.usage);
        swap.limit = if m.memswap.limit == u64::MAX || m.memory.limit == u64::MAX {
            u64::MAX
        } else {
            m.memswap.limit.saturating_add(m.memory.limit)
        };
        cache = raw.get("file").copied().unwrap_or(0);
    }
    Memory {
        cache,
        usage: entry(&m.memory),
        swap,
        kernel: entry(&m.kernel),
        kernel_tcp: entry(&m.kernel_tcp),
        raw,
    }
}

fn convert_blkio(b: cg::BlkioStats) -> Blkio {
    let list = |v: Vec<cg::BlkioDeviceStat>| -> Vec<BlkioEntry> {
        v.into_iter()
            .map(|d| BlkioEntry {
                major: d.major,
                minor: d.minor,
                op: d.op_type.as_deref().map(op_name).unwrap_or_default(),
                value: d.value,
            })
            .collect()
    };
    Blkio {
        io_service_bytes_recursive: list(b.service_bytes),
        io_serviced_recursive: list(b.serviced),
        io_queued_recursive: list(b.queued),
        io_service_time_recursive: list(b.service_time),
        io_wait_time_recursive: list(b.wait_time),
        io_merged_recursive: list(b.merged),
        io_time_recursive: list(b.time),
        sectors_recursive: list(b.sectors),
    }
}

/// runc spells operations as v1's blkio files do ("Read", "Write", "Total");
/// libcgroups' v2 reader says "read" and "write".
fn op_name(op: &str) -> String {
    let mut chars = op.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// cpuset statistics, which libcgroups does not collect. Missing files leave
/// zero values, as runc does on kernels without them.
fn read_cpuset(dir: &CgroupDir) -> CpuSet {
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).ok();
    let num = |name: &str| read(name).and_then(|t| t.trim().parse::<u64>().ok());
    let list = |name: &str| read(name).map(|t| parse_list(&t)).unwrap_or_default();
    match dir {
        CgroupDir::V1(_) => CpuSet {
            cpus: list("cpuset.cpus"),
            mems: list("cpuset.mems"),
            cpu_exclusive: num("cpuset.cpu_exclusive").unwrap_or(0),
            mem_hardwall: num("cpuset.mem_hardwall").unwrap_or(0),
            mem_exclusive: num("cpuset.mem_exclusive").unwrap_or(0),
            memory_migrate: num("cpuset.memory_migrate").unwrap_or(0),
            memory_spread_page: num("cpuset.memory_spread_page").unwrap_or(0),
            memory_spread_slab: num("cpuset.memory_spread_slab").unwrap_or(0),
            memory_pressure: num("cpuset.memory_pressure").unwrap_or(0),
            sched_load_balance: num("cpuset.sched_load_balance").unwrap_or(0),
            sched_relax_domain_level: read("cpuset.sched_relax_domain_level")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
        },
        CgroupDir::V2(_) => CpuSet {
            cpus: list("cpuset.cpus.effective"),
            mems: list("cpuset.mems.effective"),
            ..CpuSet::default()
        },
    }
}

/// Parses a kernel CPU or node list such as "0-3,8,10-11"; malformed parts are skipped.
fn parse_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// One line of `skiff events` output: runc's types.Event.
#[derive(Serialize, Debug)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Stats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
        assert_eq!(parse_list("0"), vec![0]);
    }

    #[test]
    fn v2_units_and_swap_match_runc() {
        let mut raw = cg::Stats::default();
        raw.cpu.usage.usage_total = 7;
        raw.cpu.throttling.throttled_time = 2;
        raw.memory.memory = cg::MemoryData {
            usage: 100,
            max_usage: 0,
            fail_count: 0,
            limit: 1000,
        };
        raw.memory.memswap = cg::MemoryData {
            usage: 5,
            max_usage: 0,
            fail_count: 0,
            limit: 50,
        };
        raw.memory.stats.insert("file".into(), 42);
        let s = convert(raw, true);
        assert_eq!(s.cpu.usage.total, 7000);
        assert_eq!(s.cpu.throttling.throttled_time, 2000);
        assert_eq!(s.memory.swap.usage, 105);
        assert_eq!(s.memory.swap.limit, 1050);
        assert_eq!(s.memory.cache, 42);
    }

    #[test]
    fn json_tags_match_runc() -> Result<()> {
        let mut raw = cg::Stats::default();
        raw.pids.current = 3;
        raw.blkio.service_bytes.push(cg::BlkioDeviceStat {
            major: 8,
            minor: 0,
            op_type: Some("read".into()),
            value: 512,
        });
        let s = convert(raw, false);
        let v = serde_json::to_value(Event {
            kind: "stats",
            id: "c1",
            data: Some(&s),
        })?;
        assert_eq!(v["type"], "stats");
        assert_eq!(v["data"]["pids"], serde_json::json!({"current": 3}));
        assert_eq!(
            v["data"]["blkio"]["ioServiceBytesRecursive"][0],
            serde_json::json!({"major": 8, "op": "Read", "value": 512})
        );
        assert_eq!(
            v["data"]["memory"]["kernelTCP"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(
            v["data"]["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert!(v["data"]["network_interfaces"].is_null());
        assert_eq!(v["data"]["intel_rdt"], serde_json::json!({}));
        let oom = serde_json::to_string(&Event {
            kind: "oom",
            id: "c1",
            data: None,
        })?;
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
        Ok(())
    }
}
