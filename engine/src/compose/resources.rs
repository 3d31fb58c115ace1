//! Top-level `networks`, `volumes`, `secrets` and `configs` → typed
//! definitions. Real names default to `PROJECT_KEY` (the key itself for
//! external resources), as docker compose names them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::Value;

use super::error::{index, join, Result};
use super::model::{ConfigDef, Ipam, IpamPool, NetworkDef, SecretDef, VolumeDef};
use super::reader::{Fields, Reader, Spec};

const NETWORK: Spec = Spec {
    known: &[
        "name",
        "driver",
        "driver_opts",
        "internal",
        "external",
        "labels",
        "ipam",
        "enable_ipv6",
    ],
    unsupported: &[],
    // Swarm's: any container may join a network on one host.
    ignored: &["attachable"],
};
const IPAM: Spec = Spec {
    known: &["driver", "config"],
    unsupported: &["options"],
    ignored: &[],
};
const POOL: Spec = Spec {
    known: &["subnet", "ip_range", "gateway"],
    unsupported: &["aux_addresses"],
    ignored: &[],
};
const VOLUME: Spec = Spec {
    known: &["name", "driver", "driver_opts", "external", "labels"],
    unsupported: &[],
    ignored: &[],
};
const SECRET: Spec = Spec {
    known: &["name", "file", "environment", "external", "labels"],
    unsupported: &["driver", "driver_opts", "template_driver"],
    ignored: &[],
};
const CONFIG: Spec = Spec {
    known: &[
        "name",
        "file",
        "environment",
        "content",
        "external",
        "labels",
    ],
    unsupported: &["template_driver"],
    ignored: &[],
};

/// `external: true`, or compose v1's `external: {name: x}` (its name becomes `name`).
fn external(r: &mut Reader, f: &Fields, name: &mut Option<String>) -> Result<bool> {
    match f.get("external") {
        None => Ok(false),
        Some(Value::Mapping(_)) => {
            let spec = Spec {
                known: &["name"],
                unsupported: &[],
                ignored: &[],
            };
            let v = f.get("external").unwrap_or(&Value::Null);
            let ef = r.fields(v, &f.path("external"), &spec)?;
            if let Some(n) = r.opt_string(&ef, "name")? {
                if name.as_ref().is_some_and(|own| *own != n) {
                    return Err(r.err(&f.path("external"), "external.name and name differ"));
                }
                r.warn(format!(
                    "{}: {}: external.name is deprecated, use name",
                    r.file,
                    f.path("external")
                ));
                *name = Some(n);
            }
            Ok(true)
        }
        Some(v) => r.bool(v, &f.path("external")),
    }
}

/// External resources are only referred to: anything that would configure
/// them is a conflict (as in compose).
fn only_name_if_external(r: &Reader, f: &Fields, fields: &[&str]) -> Result<()> {
    for field in fields {
        if f.has(field) {
            return Err(r.err(
                &f.path(field),
                format!("{field:?} cannot be set on an external resource"),
            ));
        }
    }
    Ok(())
}

fn real_name(project: &str, key: &str, name: Option<String>, external: bool) -> String {
    match name {
        Some(n) => n,
        None if external => key.to_owned(),
        None => format!("{project}_{key}"),
    }
}

pub(crate) fn network(r: &mut Reader, key: &str, v: &Value, project: &str) -> Result<NetworkDef> {
    let path = join("networks", key);
    let f = r.fields(v, &path, &NETWORK)?;
    let mut name = r.opt_string(&f, "name")?;
    let external = external(r, &f, &mut name)?;
    if external {
        only_name_if_external(r, &f, &["driver", "driver_opts", "internal", "ipam"])?;
    }
    let driver = r.opt_string(&f, "driver")?;
    if let Some(d) = &driver {
        if d != "bridge" {
            return Err(r.err(
                &f.path("driver"),
                format!("network driver {d:?} is not supported by skiffctl: only bridge"),
            ));
        }
    }
    if r.flag(&f, "enable_ipv6")? {
        return Err(r.err(
            &f.path("enable_ipv6"),
            "IPv6 networks are not supported by skiffctl",
        ));
    }
    let ipam = match f.get("ipam") {
        Some(i) => Some(ipam(r, i, &f.path("ipam"))?),
        None => None,
    };
    Ok(NetworkDef {
        name: real_name(project, key, name, external),
        driver,
        driver_opts: r.opt_map(&f, "driver_opts")?,
        internal: r.flag(&f, "internal")?,
        external,
        labels: r.opt_map(&f, "labels")?,
        ipam,
    })
}

fn ipam(r: &mut Reader, v: &Value, path: &str) -> Result<Ipam> {
    let f = r.fields(v, path, &IPAM)?;
    let driver = r.opt_string(&f, "driver")?;
    if let Some(d) = &driver {
        if d != "default" {
            return Err(r.err(
                &f.path("driver"),
                format!("IPAM driver {d:?} is not supported by skiffctl: only default"),
            ));
        }
    }
    let mut config = Vec::new();
    if let Some(list) = f.get("config") {
        let p = f.path("config");
        for (i, pool) in r.seq(list, &p)?.clone().iter().enumerate() {
            let pf = r.fields(pool, &index(&p, i), &POOL)?;
            let pool = IpamPool {
                subnet: r.opt_string(&pf, "subnet")?,
                ip_range: r.opt_string(&pf, "ip_range")?,
                gateway: r.opt_string(&pf, "gateway")?,
            };
            for (field, value) in [("subnet", &pool.subnet), ("ip_range", &pool.ip_range)] {
                if let Some(cidr) = value {
                    check_cidr(cidr).map_err(|m| r.err(&pf.path(field), m))?;
                }
            }
            if let Some(gw) = &pool.gateway {
                gw.parse::<std::net::IpAddr>().map_err(|_| {
                    r.err(&pf.path("gateway"), format!("invalid IP address {gw:?}"))
                })?;
            }
            config.push(pool);
        }
    }
    Ok(Ipam { driver, config })
}

fn check_cidr(cidr: &str) -> std::result::Result<(), String> {
    let bad = || format!("invalid subnet {cidr:?}: use ADDRESS/PREFIX");
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(())
}

pub(crate) fn volume(r: &mut Reader, key: &str, v: &Value, project: &str) -> Result<VolumeDef> {
    let path = join("volumes", key);
    let f = r.fields(v, &path, &VOLUME)?;
    let mut name = r.opt_string(&f, "name")?;
    let external = external(r, &f, &mut name)?;
    if external {
        only_name_if_external(r, &f, &["driver", "driver_opts"])?;
    }
    let driver = r.opt_string(&f, "driver")?;
    if let Some(d) = &driver {
        if d != "local" {
            return Err(r.err(
                &f.path("driver"),
                format!("volume driver {d:?} is not supported by skiffctl: only local"),
            ));
        }
    }
    Ok(VolumeDef {
        name: real_name(project, key, name, external),
        driver,
        driver_opts: r.opt_map(&f, "driver_opts")?,
        external,
        labels: r.opt_map(&f, "labels")?,
    })
}

/// Where a secret's or config's content comes from.
struct Source {
    file: Option<PathBuf>,
    environment: Option<String>,
    value: Option<String>,
    content: Option<String>,
}

fn source(
    r: &mut Reader,
    f: &Fields,
    path: &str,
    env: &BTreeMap<String, String>,
    what: &str,
) -> Result<Source> {
    let mut name = None;
    if external(r, f, &mut name)? {
        return Err(r.err(
            &f.path("external"),
            format!("external {what}s need a swarm and are not supported by skiffctl"),
        ));
    }
    let file = r.opt_string(f, "file")?.map(PathBuf::from);
    let environment = r.opt_string(f, "environment")?;
    let content = r.opt_string(f, "content")?;
    let count = [file.is_some(), environment.is_some(), content.is_some()]
        .iter()
        .filter(|s| **s)
        .count();
    if count != 1 {
        let choices = if what == "config" {
            "file, environment or content"
        } else {
            "file or environment"
        };
        return Err(r.err(path, format!("a {what} needs exactly one of {choices}")));
    }
    let value = match &environment {
        Some(var) => Some(env.get(var).cloned().ok_or_else(|| {
            r.err(
                &f.path("environment"),
                format!("variable {var:?} is not set"),
            )
        })?),
        None => None,
    };
    Ok(Source {
        file,
        environment,
        value,
        content,
    })
}

pub(crate) fn secret(
    r: &mut Reader,
    key: &str,
    v: &Value,
    project: &str,
    env: &BTreeMap<String, String>,
) -> Result<SecretDef> {
    let path = join("secrets", key);
    let f = r.fields(v, &path, &SECRET)?;
    let s = source(r, &f, &path, env, "secret")?;
    Ok(SecretDef {
        name: real_name(project, key, r.opt_string(&f, "name")?, false),
        file: s.file,
        environment: s.environment,
        value: s.value,
        labels: r.opt_map(&f, "labels")?,
    })
}

pub(crate) fn config(
    r: &mut Reader,
    key: &str,
    v: &Value,
    project: &str,
    env: &BTreeMap<String, String>,
) -> Result<ConfigDef> {
    let path = join("configs", key);
    let f = r.fields(v, &path, &CONFIG)?;
    let s = source(r, &f, &path, env, "config")?;
    Ok(ConfigDef {
        name: real_name(project, key, r.opt_string(&f, "name")?, false),
        file: s.file,
        environment: s.environment,
        content: s.content,
        value: s.value,
        labels: r.opt_map(&f, "labels")?,
    })
}
