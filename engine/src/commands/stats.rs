//! `stats`: CPU, memory, network, block I/O and pids of running containers,
//! from the runtime's `events --stats` (runc's format) and /proc.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde_json::Value;

use crate::container::{status, Container};
use crate::engine::Engine;
use crate::ids;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format: table (default) or json
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running)
    pub containers: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct Sample {
    cpu_ns: u64,
    mem: u64,
    limit: u64,
    net_rx: u64,
    net_tx: u64,
    blk_read: u64,
    blk_write: u64,
    pids: u64,
    at: Option<Instant>,
}

fn sample(engine: &Engine, c: &Container) -> Option<Sample> {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    if !status::is_running(&st) {
        return None;
    }
    let out = Command::new(&engine.monitor.runtime)
        .arg("--root")
        .arg(engine.monitor.runtime_state_root())
        .args(["events", "--stats", &c.id])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let d = &v["data"];
    let u = |p: &Value| p.as_u64().unwrap_or(0);
    // docker shows usage without the page cache a container could drop.
    let inactive = {
        let s = &d["memory"]["raw"];
        u(&s["total_inactive_file"]).max(u(&s["inactive_file"]))
    };
    let mut s = Sample {
        cpu_ns: u(&d["cpu"]["usage"]["total"]),
        mem: u(&d["memory"]["usage"]["usage"]).saturating_sub(inactive),
        limit: u(&d["memory"]["usage"]["limit"]),
        pids: u(&d["pids"]["current"]),
        at: Some(Instant::now()),
        ..Default::default()
    };
    for e in d["blkio"]["ioServiceBytesRecursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "read" => s.blk_read += u(&e["value"]),
            "write" => s.blk_write += u(&e["value"]),
            _ => {}
        }
    }
    if st.pid > 0 {
        let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", st.pid)).unwrap_or_default();
        for line in dev.lines().skip(2) {
            let Some((name, rest)) = line.split_once(':') else {
                continue;
            };
            if name.trim() == "lo" {
                continue;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            s.net_rx += f.first().copied().unwrap_or(0);
            s.net_tx += f.get(8).copied().unwrap_or(0);
        }
    }
    if s.limit == 0 || s.limit > (1 << 60) {
        s.limit = host_memory();
    }
    Some(s)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// docker's units: 1.5MiB for memory, 1.5MB for I/O.
fn binary(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    scaled(n as f64, 1024.0, &units)
}

fn decimal(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    scaled(n as f64, 1000.0, &units)
}

fn scaled(mut v: f64, base: f64, units: &[&str]) -> String {
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0}{}", units[i])
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + units[i]
    }
}

fn rows(
    engine: &Engine,
    list: &[Container],
    before: &BTreeMap<String, Sample>,
) -> Vec<BTreeMap<&'static str, String>> {
    let mut out = Vec::new();
    for c in list {
        let Some(now) = sample(engine, c) else {
            continue;
        };
        let cpu = match (before.get(&c.id), now.at) {
            (Some(b), Some(t)) if b.at.is_some() => {
                let wall = t.duration_since(b.at.unwrap_or(t)).as_nanos().max(1) as f64;
                now.cpu_ns.saturating_sub(b.cpu_ns) as f64 / wall * 100.0
            }
            _ => 0.0,
        };
        let mut r = BTreeMap::new();
        r.insert("ID", ids::short(&c.id).to_owned());
        r.insert("Name", c.name.clone());
        r.insert("CPUPerc", format!("{cpu:.2}%"));
        r.insert(
            "MemUsage",
            format!("{} / {}", binary(now.mem), binary(now.limit)),
        );
        r.insert(
            "MemPerc",
            format!("{:.2}%", now.mem as f64 / now.limit.max(1) as f64 * 100.0),
        );
        r.insert(
            "NetIO",
            format!("{} / {}", decimal(now.net_rx), decimal(now.net_tx)),
        );
        r.insert(
            "BlockIO",
            format!("{} / {}", decimal(now.blk_read), decimal(now.blk_write)),
        );
        r.insert("PIDs", now.pids.to_string());
        out.push(r);
    }
    out
}

fn print(rows: &[BTreeMap<&'static str, String>], json: bool) {
    if json {
        for r in rows {
            let obj: serde_json::Map<String, Value> = r
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect();
            println!("{}", Value::Object(obj));
        }
        return;
    }
    println!(
        "{:<15}{:<25}{:<9}{:<23}{:<9}{:<20}{:<20}PIDS",
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O"
    );
    for r in rows {
        println!(
            "{:<15}{:<25}{:<9}{:<23}{:<9}{:<20}{:<20}{}",
            r["ID"],
            r["Name"],
            r["CPUPerc"],
            r["MemUsage"],
            r["MemPerc"],
            r["NetIO"],
            r["BlockIO"],
            r["PIDs"]
        );
    }
}

pub fn run(engine: &Engine, a: StatsArgs) -> Result<i32> {
    let json = match a.format.as_deref() {
        None | Some("table") => false,
        Some("json") | Some("{{json .}}") => true,
        Some(f) => bail!("--format {f:?}: use table or json"),
    };
    let list: Vec<Container> = if a.containers.is_empty() {
        engine
            .containers
            .list()?
            .into_iter()
            .filter(|c| {
                a.all || status::is_running(&status::current(&engine.containers.dir(&c.id)))
            })
            .collect()
    } else {
        a.containers
            .iter()
            .map(|n| engine.containers.find(n))
            .collect::<Result<_>>()?
    };
    let mut before: BTreeMap<String, Sample> = list
        .iter()
        .filter_map(|c| Some((c.id.clone(), sample(engine, c)?)))
        .collect();
    loop {
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let r = rows(engine, &list, &before);
        if !a.no_stream && !json {
            // Redraw in place, as docker does on a terminal.
            print!("\x1b[2J\x1b[H");
        }
        print(&r, json);
        if a.no_stream {
            return Ok(0);
        }
        before = list
            .iter()
            .filter_map(|c| Some((c.id.clone(), sample(engine, c)?)))
            .collect();
    }
}
