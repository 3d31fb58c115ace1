//! `--memory`, `--cpus`, `--pids-limit` and friends as the runtime spec's
//! `linux.resources`, with docker's default device rules.

use anyhow::Result;
use serde_json::{json, Value};

use crate::container::record::HostConfig;

/// The CFS period docker uses with `--cpus`.
const CPU_PERIOD: i64 = 100_000;

/// docker's default device cgroup rules: nothing but the usual character
/// devices (and mknod of any).
fn default_devices() -> Value {
    let allow = |kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = json!({"allow": true, "type": kind, "access": access});
        if let Some(m) = major {
            d["major"] = json!(m);
        }
        if let Some(m) = minor {
            d["minor"] = json!(m);
        }
        d
    };
    json!([
        {"allow": false, "access": "rwm"},
        allow("c", None, None, "m"),
        allow("b", None, None, "m"),
        allow("c", Some(1), Some(3), "rwm"),
        allow("c", Some(1), Some(5), "rwm"),
        allow("c", Some(1), Some(7), "rwm"),
        allow("c", Some(1), Some(8), "rwm"),
        allow("c", Some(1), Some(9), "rwm"),
        allow("c", Some(5), Some(0), "rwm"),
        allow("c", Some(5), Some(1), "rwm"),
        allow("c", Some(5), Some(2), "rwm"),
        allow("c", Some(136), None, "rwm"),
        allow("c", Some(10), Some(200), "rwm"),
    ])
}

pub fn json(h: &HostConfig) -> Result<Value> {
    let mut r = json!({
        "devices": if h.privileged { json!([{"allow": true, "access": "rwm"}]) } else { default_devices() },
    });
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        // docker: swap defaults to twice the memory limit (memory + as much swap).
        let swap = match h.memory_swap {
            0 => h.memory * 2,
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if !memory.is_empty() {
        r["memory"] = Value::Object(memory);
    }
    if h.nano_cpus > 0 {
        let quota = h.nano_cpus * CPU_PERIOD / 1_000_000_000;
        r["cpu"] = json!({"quota": quota, "period": CPU_PERIOD});
    }
    if h.pids_limit != 0 {
        r["pids"] = json!({"limit": h.pids_limit});
    }
    Ok(r)
}

/// docker's size syntax: `512`, `512b`, `64k`, `32m`, `1g` (binary units).
pub fn parse_bytes(value: &str, flag: &str) -> Result<i64> {
    let v = value.trim().to_ascii_lowercase();
    let (num, mult) = match v
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        None => (v.as_str(), 1i64),
        Some((i, _)) => {
            let mult = match &v[i..] {
                "b" => 1,
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                "t" | "tb" | "tib" => 1 << 40,
                _ => anyhow::bail!("invalid {flag} value {value:?}: unknown unit"),
            };
            (&v[..i], mult)
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid {flag} value {value:?}"))?;
    if n < 0.0 {
        anyhow::bail!("invalid {flag} value {value:?}: negative");
    }
    Ok((n * mult as f64) as i64)
}

/// `--cpus 1.5` as nano CPUs.
pub fn parse_cpus(value: &str) -> Result<i64> {
    let n: f64 = value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid --cpus value {value:?}"))?;
    if !(0.0..=1024.0).contains(&n) {
        anyhow::bail!("invalid --cpus value {value:?}: out of range");
    }
    Ok((n * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpus() -> Result<()> {
        assert_eq!(parse_bytes("32m", "--memory")?, 32 << 20);
        assert_eq!(parse_bytes("1G", "--memory")?, 1 << 30);
        assert_eq!(parse_bytes("512", "--memory")?, 512);
        assert_eq!(parse_bytes("1.5k", "--memory")?, 1536);
        let err = parse_bytes("12x", "--memory").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--memory") && e.contains("12x")));
        assert_eq!(parse_cpus("1.5")?, 1_500_000_000);
        assert!(parse_cpus("lots").is_err());
        Ok(())
    }

    #[test]
    fn resources_json() -> Result<()> {
        let h = HostConfig {
            memory: 32 << 20,
            nano_cpus: 500_000_000,
            pids_limit: 100,
            ..Default::default()
        };
        let r = json(&h)?;
        assert_eq!(r["memory"]["limit"], 32 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 100);
        assert!(r["devices"].as_array().is_some_and(|d| d.len() > 5));
        Ok(())
    }
}
