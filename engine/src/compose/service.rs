//! One service's canonical definition → a typed, checked [`Service`]. Every
//! field of the compose specification is either read here, rejected as not
//! supported by skiffctl, or (when it cannot change what runs) ignored with a
//! warning naming it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

use super::error::{index, join, Result};
use super::model::{
    Build, BuildSecret, Dependency, DependencyCondition, Healthcheck, Logging, Service,
    ServiceFile, ServiceNetwork, Ulimit,
};
use super::reader::{Fields, Reader, Spec};
use super::yaml::key_string;
use super::{bytes, dotenv, duration, ports, shellwords, volumes};

const SERVICE: Spec = Spec {
    known: &[
        "image",
        "build",
        "pull_policy",
        "platform",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "ports",
        "expose",
        "volumes",
        "tmpfs",
        "networks",
        "network_mode",
        "depends_on",
        "healthcheck",
        "restart",
        "deploy",
        "scale",
        "mem_limit",
        "mem_reservation",
        "memswap_limit",
        "cpus",
        "pids_limit",
        "container_name",
        "hostname",
        "domainname",
        "user",
        "working_dir",
        "labels",
        "stop_signal",
        "stop_grace_period",
        "init",
        "read_only",
        "privileged",
        "tty",
        "stdin_open",
        "attach",
        "cap_add",
        "cap_drop",
        "security_opt",
        "ulimits",
        "extra_hosts",
        "dns",
        "dns_search",
        "sysctls",
        "shm_size",
        "profiles",
        "secrets",
        "configs",
        "logging",
        // Resolved before a service is read; known so that one file can be checked alone.
        "extends",
    ],
    unsupported: &[
        "annotations",
        "blkio_config",
        "cgroup",
        "cgroup_parent",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpuset",
        "credential_spec",
        "device_cgroup_rules",
        "devices",
        "dns_opt",
        "external_links",
        "gpus",
        "group_add",
        "ipc",
        "isolation",
        "label_file",
        "links",
        "mac_address",
        "mem_swappiness",
        "models",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "post_start",
        "pre_stop",
        "provider",
        "runtime",
        "storage_opt",
        "use_api_socket",
        "userns_mode",
        "uts",
        "volumes_from",
    ],
    // `develop` configures `compose watch`, which skiffctl does not have.
    ignored: &["develop"],
};

const BUILD: Spec = Spec {
    known: &[
        "context",
        "dockerfile",
        "dockerfile_inline",
        "target",
        "args",
        "labels",
        "secrets",
        "cache_from",
        "tags",
    ],
    unsupported: &[
        "additional_contexts",
        "cache_to",
        "entitlements",
        "extra_hosts",
        "isolation",
        "network",
        "no_cache",
        "platforms",
        "privileged",
        "pull",
        "provenance",
        "sbom",
        "shm_size",
        "ssh",
        "ulimits",
    ],
    ignored: &[],
};

const HEALTHCHECK: Spec = Spec {
    known: &[
        "test",
        "interval",
        "timeout",
        "retries",
        "start_period",
        "start_interval",
        "disable",
    ],
    unsupported: &[],
    ignored: &[],
};

const DEPLOY: Spec = Spec {
    known: &["resources", "replicas", "restart_policy", "mode"],
    unsupported: &[],
    // Swarm's scheduling; one host runs every replica here.
    ignored: &[
        "endpoint_mode",
        "labels",
        "placement",
        "rollback_config",
        "update_config",
    ],
};

const RESOURCES: Spec = Spec {
    known: &["limits", "reservations"],
    unsupported: &[],
    ignored: &[],
};

const LIMITS: Spec = Spec {
    known: &["cpus", "memory", "pids"],
    unsupported: &[],
    ignored: &[],
};

const RESERVATIONS: Spec = Spec {
    known: &["memory"],
    unsupported: &["devices", "generic_resources"],
    // The kernel has no CPU reservation for one container (docker ignores it too).
    ignored: &["cpus"],
};

const RESTART_POLICY: Spec = Spec {
    known: &["condition", "max_attempts"],
    unsupported: &[],
    ignored: &["delay", "window"],
};

const NETWORK: Spec = Spec {
    known: &["aliases", "ipv4_address", "ipv6_address", "priority"],
    unsupported: &[
        "driver_opts",
        "gw_priority",
        "interface_name",
        "link_local_ips",
        "mac_address",
    ],
    ignored: &[],
};

const DEPENDENCY: Spec = Spec {
    known: &["condition", "required", "restart"],
    unsupported: &[],
    ignored: &[],
};

const FILE_REF: Spec = Spec {
    known: &["source", "target", "uid", "gid", "mode"],
    unsupported: &[],
    ignored: &[],
};

const LOGGING: Spec = Spec {
    known: &["driver", "options"],
    unsupported: &[],
    ignored: &[],
};

const ULIMIT: Spec = Spec {
    known: &["soft", "hard"],
    unsupported: &[],
    ignored: &[],
};

const ULIMIT_NAMES: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// What a service's values are resolved with.
pub(crate) struct Context<'a> {
    /// The variables of the service's project layer (shell over `.env`), for
    /// `environment` entries without a value, build args and env_files.
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) home: &'a Path,
    pub(crate) project_dir: &'a Path,
    /// One file of several: the checks that need the merged service (an
    /// image or a build) wait for the merge.
    pub(crate) partial: bool,
}

pub(crate) fn parse(r: &mut Reader, name: &str, value: &Value, ctx: &Context) -> Result<Service> {
    let path = join("services", name);
    let f = r.fields(value, &path, &SERVICE)?;
    let mut s = Service {
        name: name.to_owned(),
        profiles: r.opt_list(&f, "profiles")?,
        image: r.opt_string(&f, "image")?,
        build: f
            .get("build")
            .map(|b| build(r, b, &f.path("build"), ctx))
            .transpose()?,
        platform: r.opt_string(&f, "platform")?,
        command: command(r, &f, "command")?,
        entrypoint: command(r, &f, "entrypoint")?,
        environment: environment(r, &f, ctx)?,
        expose: expose(r, &f)?,
        tmpfs: r.opt_list(&f, "tmpfs")?,
        network_mode: r.opt_string(&f, "network_mode")?,
        restart: r.opt_string(&f, "restart")?,
        replicas: 1,
        container_name: r.opt_string(&f, "container_name")?,
        hostname: r.opt_string(&f, "hostname")?,
        domainname: r.opt_string(&f, "domainname")?,
        user: r.opt_string(&f, "user")?,
        working_dir: r.opt_string(&f, "working_dir")?,
        labels: r.opt_map(&f, "labels")?,
        stop_signal: r.opt_string(&f, "stop_signal")?,
        stop_grace_period_ns: opt_duration(r, &f, "stop_grace_period")?,
        init: r.opt_bool(&f, "init")?,
        read_only: r.flag(&f, "read_only")?,
        privileged: r.flag(&f, "privileged")?,
        tty: r.flag(&f, "tty")?,
        stdin_open: r.flag(&f, "stdin_open")?,
        attach: r.opt_bool(&f, "attach")?,
        cap_add: r.opt_list(&f, "cap_add")?,
        cap_drop: r.opt_list(&f, "cap_drop")?,
        security_opt: r.opt_list(&f, "security_opt")?,
        extra_hosts: r.opt_list(&f, "extra_hosts")?,
        dns: r.opt_list(&f, "dns")?,
        dns_search: r.opt_list(&f, "dns_search")?,
        sysctls: r.opt_map(&f, "sysctls")?,
        shm_size: opt_bytes(r, &f, "shm_size")?,
        mem_limit: opt_bytes(r, &f, "mem_limit")?,
        mem_reservation: opt_bytes(r, &f, "mem_reservation")?,
        memswap_limit: memswap(r, &f)?,
        cpus: f
            .get("cpus")
            .map(|v| r.f64(v, &f.path("cpus")))
            .transpose()?,
        pids_limit: f
            .get("pids_limit")
            .map(|v| r.i64(v, &f.path("pids_limit")))
            .transpose()?,
        ..Service::default()
    };
    if let Some(list) = f.get("ports") {
        let p = f.path("ports");
        for (i, entry) in r.seq(list, &p)?.iter().enumerate() {
            s.ports.extend(ports::parse_entry(r, entry, &index(&p, i))?);
        }
    }
    if let Some(list) = f.get("volumes") {
        let p = f.path("volumes");
        for (i, entry) in r.seq(list, &p)?.iter().enumerate() {
            s.volumes.push(volumes::parse_entry(
                r,
                entry,
                &index(&p, i),
                ctx.project_dir,
                ctx.home,
            )?);
        }
    }
    if let Some(nets) = f.get("networks") {
        s.networks = networks(r, nets, &f.path("networks"))?;
    }
    if let Some(deps) = f.get("depends_on") {
        s.depends_on = depends_on(r, deps, &f.path("depends_on"))?;
    }
    if let Some(hc) = f.get("healthcheck") {
        s.healthcheck = Some(healthcheck(r, hc, &f.path("healthcheck"))?);
    }
    if let Some(u) = f.get("ulimits") {
        s.ulimits = ulimits(r, u, &f.path("ulimits"))?;
    }
    if let Some(l) = f.get("secrets") {
        s.secrets = file_refs(r, l, &f.path("secrets"), "/run/secrets/")?;
    }
    if let Some(l) = f.get("configs") {
        s.configs = file_refs(r, l, &f.path("configs"), "/")?;
    }
    if let Some(l) = f.get("logging") {
        s.logging = Some(logging(r, l, &f.path("logging"))?);
    }
    s.pull_policy = pull_policy(r, &f)?;
    scale(r, &f, &mut s)?;
    deploy(r, &f, &mut s)?;
    check(r, &f, &s, ctx.partial)?;
    Ok(s)
}

/// `command`/`entrypoint`: a list as it is, a string split into words.
fn command(r: &Reader, f: &Fields, name: &str) -> Result<Option<Vec<String>>> {
    let Some(v) = f.get(name) else {
        return Ok(None);
    };
    let path = f.path(name);
    match v {
        Value::Sequence(_) => Ok(Some(r.string_list(v, &path)?)),
        other => {
            let text = r.string(other, &path)?;
            shellwords::split(&text)
                .map(Some)
                .map_err(|m| r.err(&path, m))
        }
    }
}

/// env_files in order, then `environment` over them; entries without a value
/// take the variable from the environment, or stay unset.
fn environment(r: &Reader, f: &Fields, ctx: &Context) -> Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    if let Some(files) = f.get("env_file") {
        let p = f.path("env_file");
        for (i, entry) in r.seq(files, &p)?.iter().enumerate() {
            let at = index(&p, i);
            let file = entry
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| r.err(&at, "an env_file entry needs a path"))?;
            let required = entry
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let raw = entry.get("format").and_then(Value::as_str) == Some("raw");
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => return Err(r.err(&at, format!("cannot read env file {file}: {e}"))),
            };
            let lookup = |k: &str| ctx.env.get(k).cloned();
            let mut warnings = Vec::new();
            let vars = if raw {
                dotenv::parse_raw(&text)
            } else {
                dotenv::parse(&text, &lookup, &mut warnings)
            }
            .map_err(|m| r.err(&at, format!("{file}: {m}")))?;
            out.extend(vars.into_iter().map(|(k, v)| (k, Some(v))));
        }
    }
    if let Some(env) = f.get("environment") {
        for (k, v) in r.optional_map(env, &f.path("environment"))? {
            let v = v.or_else(|| ctx.env.get(&k).cloned());
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn expose(r: &Reader, f: &Fields) -> Result<Vec<String>> {
    let list = r.opt_list(f, "expose")?;
    let p = f.path("expose");
    for (i, e) in list.iter().enumerate() {
        ports::check_expose(e).map_err(|m| r.err(&index(&p, i), m))?;
    }
    Ok(list)
}

fn opt_duration(r: &Reader, f: &Fields, name: &str) -> Result<Option<u64>> {
    f.get(name)
        .map(|v| {
            let text = r.string(v, &f.path(name))?;
            duration::parse(&text).map_err(|m| r.err(&f.path(name), m))
        })
        .transpose()
}

fn opt_bytes(r: &Reader, f: &Fields, name: &str) -> Result<Option<u64>> {
    f.get(name)
        .map(|v| bytes::parse_value(v).map_err(|m| r.err(&f.path(name), m)))
        .transpose()
}

/// `memswap_limit`: a byte value, or -1 for unlimited swap.
fn memswap(r: &Reader, f: &Fields) -> Result<Option<i64>> {
    let Some(v) = f.get("memswap_limit") else {
        return Ok(None);
    };
    if r.i64(v, "").ok() == Some(-1) {
        return Ok(Some(-1));
    }
    let b = bytes::parse_value(v).map_err(|m| r.err(&f.path("memswap_limit"), m))?;
    i64::try_from(b)
        .map(Some)
        .map_err(|_| r.err(&f.path("memswap_limit"), "too large"))
}

fn build(r: &mut Reader, v: &Value, path: &str, ctx: &Context) -> Result<Build> {
    let f = r.fields(v, path, &BUILD)?;
    // Without a context the build runs in the project directory.
    let context = match r.opt_string(&f, "context")? {
        Some(c) => c,
        None => ctx.project_dir.to_string_lossy().into_owned(),
    };
    let b = Build {
        context,
        dockerfile: r.opt_string(&f, "dockerfile")?,
        dockerfile_inline: r.opt_string(&f, "dockerfile_inline")?,
        target: r.opt_string(&f, "target")?,
        args: match f.get("args") {
            Some(a) => r
                .optional_map(a, &f.path("args"))?
                .into_iter()
                .map(|(k, v)| {
                    let v = v.or_else(|| ctx.env.get(&k).cloned());
                    (k, v)
                })
                .collect(),
            None => BTreeMap::new(),
        },
        labels: r.opt_map(&f, "labels")?,
        secrets: match f.get("secrets") {
            Some(s) => file_refs(r, s, &f.path("secrets"), "")?
                .into_iter()
                .map(|s| BuildSecret {
                    target: s.target,
                    source: s.source,
                })
                .collect(),
            None => Vec::new(),
        },
        cache_from: r.opt_list(&f, "cache_from")?,
        tags: r.opt_list(&f, "tags")?,
    };
    if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
        return Err(r.err(path, "dockerfile and dockerfile_inline cannot both be set"));
    }
    Ok(b)
}

fn networks(r: &mut Reader, v: &Value, path: &str) -> Result<BTreeMap<String, ServiceNetwork>> {
    let mut out = BTreeMap::new();
    for (k, n) in r.mapping(v, path)?.clone() {
        let name = key_string(&k).unwrap_or_default();
        let at = join(path, &name);
        let net = if n.is_null() {
            ServiceNetwork::default()
        } else {
            let f = r.fields(&n, &at, &NETWORK)?;
            let net = ServiceNetwork {
                aliases: r.opt_list(&f, "aliases")?,
                ipv4_address: r.opt_string(&f, "ipv4_address")?,
                ipv6_address: r.opt_string(&f, "ipv6_address")?,
                priority: f
                    .get("priority")
                    .map(|p| r.i64(p, &f.path("priority")))
                    .transpose()?,
            };
            if let Some(ip) = &net.ipv4_address {
                ip.parse::<std::net::Ipv4Addr>().map_err(|_| {
                    r.err(
                        &f.path("ipv4_address"),
                        format!("invalid IPv4 address {ip:?}"),
                    )
                })?;
            }
            if let Some(ip) = &net.ipv6_address {
                ip.parse::<std::net::Ipv6Addr>().map_err(|_| {
                    r.err(
                        &f.path("ipv6_address"),
                        format!("invalid IPv6 address {ip:?}"),
                    )
                })?;
            }
            net
        };
        out.insert(name, net);
    }
    Ok(out)
}

fn depends_on(r: &mut Reader, v: &Value, path: &str) -> Result<BTreeMap<String, Dependency>> {
    let mut out = BTreeMap::new();
    for (k, d) in r.mapping(v, path)?.clone() {
        let name = key_string(&k).unwrap_or_default();
        let at = join(path, &name);
        let mut dep = Dependency {
            condition: DependencyCondition::Started,
            restart: false,
            required: true,
        };
        if !d.is_null() {
            let f = r.fields(&d, &at, &DEPENDENCY)?;
            if let Some(c) = r.opt_string(&f, "condition")? {
                dep.condition = match c.as_str() {
                    "service_started" => DependencyCondition::Started,
                    "service_healthy" => DependencyCondition::Healthy,
                    "service_completed_successfully" => {
                        DependencyCondition::CompletedSuccessfully
                    }
                    other => {
                        return Err(r.err(
                            &f.path("condition"),
                            format!("unknown condition {other:?}: use service_started, service_healthy or service_completed_successfully"),
                        ))
                    }
                };
            }
            dep.restart = r.flag(&f, "restart")?;
            dep.required = r.opt_bool(&f, "required")?.unwrap_or(true);
        }
        out.insert(name, dep);
    }
    Ok(out)
}

fn healthcheck(r: &mut Reader, v: &Value, path: &str) -> Result<Healthcheck> {
    let f = r.fields(v, path, &HEALTHCHECK)?;
    let test = match f.get("test") {
        Some(Value::Sequence(_)) => r.opt_list(&f, "test")?,
        Some(other) => vec!["CMD-SHELL".to_owned(), r.string(other, &f.path("test"))?],
        None => Vec::new(),
    };
    match test.first().map(String::as_str) {
        None | Some("CMD" | "CMD-SHELL" | "NONE") => {}
        Some(other) => {
            return Err(r.err(
                &f.path("test"),
                format!("a test list starts with CMD, CMD-SHELL or NONE, not {other:?}"),
            ))
        }
    }
    if test.len() == 1 && test[0] != "NONE" {
        return Err(r.err(&f.path("test"), format!("{} needs a command", test[0])));
    }
    let disable = r.flag(&f, "disable")? || test.first().map(String::as_str) == Some("NONE");
    let retries = f
        .get("retries")
        .map(|v| r.u64(v, &f.path("retries")))
        .transpose()?;
    let hc = Healthcheck {
        test: if disable { Vec::new() } else { test },
        interval_ns: opt_duration(r, &f, "interval")?,
        timeout_ns: opt_duration(r, &f, "timeout")?,
        retries,
        start_period_ns: opt_duration(r, &f, "start_period")?,
        start_interval_ns: opt_duration(r, &f, "start_interval")?,
        disable,
    };
    if disable {
        // Only the flag matters: drop what could not run anyway.
        return Ok(Healthcheck {
            disable: true,
            ..Healthcheck::default()
        });
    }
    Ok(hc)
}

fn ulimits(r: &mut Reader, v: &Value, path: &str) -> Result<BTreeMap<String, Ulimit>> {
    let mut out = BTreeMap::new();
    for (k, u) in r.mapping(v, path)?.clone() {
        let name = key_string(&k).unwrap_or_default();
        let at = join(path, &name);
        if !ULIMIT_NAMES.contains(&name.as_str()) {
            return Err(r.err(&at, format!("unknown ulimit {name:?}")));
        }
        let limit = match &u {
            Value::Mapping(_) => {
                let f = r.fields(&u, &at, &ULIMIT)?;
                let soft = f
                    .get("soft")
                    .map(|s| r.i64(s, &f.path("soft")))
                    .transpose()?;
                let hard = f
                    .get("hard")
                    .map(|h| r.i64(h, &f.path("hard")))
                    .transpose()?;
                match (soft, hard) {
                    (Some(soft), Some(hard)) => Ulimit { soft, hard },
                    _ => return Err(r.err(&at, "a ulimit needs both soft and hard")),
                }
            }
            other => {
                let n = r.i64(other, &at)?;
                Ulimit { soft: n, hard: n }
            }
        };
        let unlimited = |n: i64| n == -1;
        if !unlimited(limit.hard) && (unlimited(limit.soft) || limit.soft > limit.hard) {
            return Err(r.err(&at, "the soft limit is above the hard limit"));
        }
        out.insert(name, limit);
    }
    Ok(out)
}

/// Service secrets/configs; the target becomes absolute under `dir`
/// (`/run/secrets/` for secrets, `/` for configs; "" keeps it as an id).
fn file_refs(r: &mut Reader, v: &Value, path: &str, dir: &str) -> Result<Vec<ServiceFile>> {
    let mut out = Vec::new();
    for (i, item) in r.seq(v, path)?.clone().iter().enumerate() {
        let at = index(path, i);
        let f = r.fields(item, &at, &FILE_REF)?;
        let source = r
            .opt_string(&f, "source")?
            .ok_or_else(|| r.err(&at, "needs a source"))?;
        let target = match r.opt_string(&f, "target")? {
            Some(t) if t.starts_with('/') || dir.is_empty() => t,
            Some(t) => format!("{dir}{t}"),
            None => format!("{dir}{source}"),
        };
        out.push(ServiceFile {
            source,
            target,
            uid: r.opt_string(&f, "uid")?,
            gid: r.opt_string(&f, "gid")?,
            mode: f
                .get("mode")
                .map(|m| r.mode(m, &f.path("mode")))
                .transpose()?,
        });
    }
    Ok(out)
}

fn logging(r: &mut Reader, v: &Value, path: &str) -> Result<Logging> {
    let f = r.fields(v, path, &LOGGING)?;
    let driver = r
        .opt_string(&f, "driver")?
        .unwrap_or_else(|| "json-file".to_owned());
    if driver != "json-file" {
        return Err(r.err(
            &f.path("driver"),
            format!("logging driver {driver:?} is not supported by skiffctl: only json-file"),
        ));
    }
    let options = r.opt_map(&f, "options")?;
    for (k, v) in &options {
        let at = join(&f.path("options"), k);
        match k.as_str() {
            "max-size" => {
                bytes::parse(v).map_err(|m| r.err(&at, m))?;
            }
            "max-file" => {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| r.err(&at, format!("must be a positive number, not {v:?}")))?;
            }
            other => {
                return Err(r.err(
                    &at,
                    format!("json-file option {other:?} is not supported by skiffctl (max-size and max-file are)"),
                ))
            }
        }
    }
    Ok(Logging { driver, options })
}

fn pull_policy(r: &Reader, f: &Fields) -> Result<Option<String>> {
    let Some(p) = r.opt_string(f, "pull_policy")? else {
        return Ok(None);
    };
    let policy = match p.as_str() {
        "always" | "never" | "missing" | "build" => p,
        // compose's older name for missing.
        "if_not_present" => "missing".to_owned(),
        other => {
            return Err(r.err(
                &f.path("pull_policy"),
                format!("pull_policy {other:?} is not supported by skiffctl: use always, never, missing or build"),
            ))
        }
    };
    Ok(Some(policy))
}

fn scale(r: &Reader, f: &Fields, s: &mut Service) -> Result<()> {
    if let Some(v) = f.get("scale") {
        s.replicas = replicas(r, v, &f.path("scale"))?;
    }
    Ok(())
}

fn replicas(r: &Reader, v: &Value, path: &str) -> Result<u32> {
    let n = r.u64(v, path)?;
    u32::try_from(n).map_err(|_| r.err(path, format!("{n} is too many replicas")))
}

/// `deploy`: replicas, resources and restart_policy fold into the service's
/// own fields; set in both places they must agree.
fn deploy(r: &mut Reader, f: &Fields, s: &mut Service) -> Result<()> {
    let Some(d) = f.get("deploy") else {
        return Ok(());
    };
    let dpath = f.path("deploy");
    let df = r.fields(d, &dpath, &DEPLOY)?;
    if let Some(mode) = r.opt_string(&df, "mode")? {
        if mode != "replicated" {
            return Err(r.err(
                &df.path("mode"),
                format!("deploy mode {mode:?} is not supported by skiffctl: only replicated"),
            ));
        }
    }
    if let Some(v) = df.get("replicas") {
        let n = replicas(r, v, &df.path("replicas"))?;
        if f.has("scale") && n != s.replicas {
            return Err(r.err(
                &df.path("replicas"),
                format!("{n} differs from scale ({}); set one of them", s.replicas),
            ));
        }
        s.replicas = n;
    }
    if let Some(res) = df.get("resources") {
        let rf = r.fields(res, &df.path("resources"), &RESOURCES)?;
        if let Some(l) = rf.get("limits") {
            let lf = r.fields(l, &rf.path("limits"), &LIMITS)?;
            if let Some(v) = lf.get("memory") {
                let b = bytes::parse_value(v).map_err(|m| r.err(&lf.path("memory"), m))?;
                agree(r, &lf.path("memory"), &mut s.mem_limit, b, "mem_limit")?;
            }
            if let Some(v) = lf.get("cpus") {
                let c = r.f64(v, &lf.path("cpus"))?;
                if s.cpus.is_some_and(|own| own != c) {
                    return Err(r.err(&lf.path("cpus"), "differs from cpus; set one of them"));
                }
                s.cpus = Some(c);
            }
            if let Some(v) = lf.get("pids") {
                let p = r.i64(v, &lf.path("pids"))?;
                if s.pids_limit.is_some_and(|own| own != p) {
                    return Err(r.err(&lf.path("pids"), "differs from pids_limit; set one of them"));
                }
                s.pids_limit = Some(p);
            }
        }
        if let Some(res) = rf.get("reservations") {
            let rsf = r.fields(res, &rf.path("reservations"), &RESERVATIONS)?;
            if let Some(v) = rsf.get("memory") {
                let b = bytes::parse_value(v).map_err(|m| r.err(&rsf.path("memory"), m))?;
                agree(
                    r,
                    &rsf.path("memory"),
                    &mut s.mem_reservation,
                    b,
                    "mem_reservation",
                )?;
            }
        }
    }
    if let Some(rp) = df.get("restart_policy") {
        let pf = r.fields(rp, &df.path("restart_policy"), &RESTART_POLICY)?;
        let condition = r
            .opt_string(&pf, "condition")?
            .unwrap_or_else(|| "any".to_owned());
        let attempts = pf
            .get("max_attempts")
            .map(|v| r.u64(v, &pf.path("max_attempts")))
            .transpose()?;
        let policy = match (condition.as_str(), attempts) {
            ("none", _) => "no".to_owned(),
            ("on-failure", Some(n)) => format!("on-failure:{n}"),
            ("on-failure", None) => "on-failure".to_owned(),
            ("any", _) => "always".to_owned(),
            (other, _) => {
                return Err(r.err(
                    &pf.path("condition"),
                    format!("unknown condition {other:?}: use none, on-failure or any"),
                ))
            }
        };
        // `restart` on the service itself wins, as in docker compose.
        if s.restart.is_none() {
            s.restart = Some(policy);
        }
    }
    Ok(())
}

fn agree(r: &Reader, path: &str, own: &mut Option<u64>, value: u64, own_name: &str) -> Result<()> {
    match own {
        Some(v) if *v != value => Err(r.err(
            path,
            format!("{value} bytes differs from {own_name} ({v} bytes); set one of them"),
        )),
        _ => {
            *own = Some(value);
            Ok(())
        }
    }
}

/// Checks of the service's own values (references to other parts of the
/// project are checked in validate.rs).
fn check(r: &Reader, f: &Fields, s: &Service, partial: bool) -> Result<()> {
    if s.image.is_none() && s.build.is_none() && !partial {
        return Err(r.err(&f.path, "a service needs an image or a build section"));
    }
    if s.network_mode.is_some() && !s.networks.is_empty() {
        return Err(r.err(
            &f.path("network_mode"),
            "network_mode and networks cannot both be set",
        ));
    }
    if let Some(mode) = &s.network_mode {
        let ok = matches!(mode.as_str(), "host" | "none" | "bridge")
            || mode.strip_prefix("service:").is_some_and(|n| !n.is_empty())
            || mode
                .strip_prefix("container:")
                .is_some_and(|n| !n.is_empty());
        if !ok {
            return Err(r.err(
                &f.path("network_mode"),
                format!("network_mode {mode:?} is not supported by skiffctl: use host, none, bridge, service:NAME or container:NAME"),
            ));
        }
    }
    if let Some(restart) = &s.restart {
        let ok = match restart.as_str() {
            "no" | "always" | "unless-stopped" | "on-failure" => true,
            other => other
                .strip_prefix("on-failure:")
                .is_some_and(|n| n.parse::<u32>().is_ok()),
        };
        if !ok {
            return Err(r.err(
                &f.path("restart"),
                format!("invalid restart policy {restart:?}: use no, always, on-failure[:N] or unless-stopped"),
            ));
        }
    }
    if let Some(name) = &s.container_name {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(r.err(
                &f.path("container_name"),
                format!("invalid container name {name:?}"),
            ));
        }
        if s.replicas > 1 {
            return Err(r.err(
                &f.path("container_name"),
                format!(
                    "a service with a container_name cannot have {} replicas",
                    s.replicas
                ),
            ));
        }
    }
    if let Some(dir) = &s.working_dir {
        if !dir.starts_with('/') {
            return Err(r.err(
                &f.path("working_dir"),
                format!("{dir:?} must be an absolute path"),
            ));
        }
    }
    if let Some(platform) = &s.platform {
        check_platform(platform).map_err(|m| r.err(&f.path("platform"), m))?;
    }
    if let Some(label) = s
        .labels
        .keys()
        .find(|k| k.starts_with("com.docker.compose."))
    {
        return Err(r.err(
            &join(&f.path("labels"), label),
            "the com.docker.compose. label prefix is reserved for compose",
        ));
    }
    if let Some(c) = s.cpus {
        if c < 0.0 {
            return Err(r.err(&f.path("cpus"), "must not be negative"));
        }
    }
    for (i, t) in s.tmpfs.iter().enumerate() {
        if !t.starts_with('/') {
            return Err(r.err(
                &index(&f.path("tmpfs"), i),
                format!("{t:?} must be an absolute path"),
            ));
        }
    }
    Ok(())
}

/// Only the host's platform runs here.
pub(crate) fn check_platform(platform: &str) -> std::result::Result<(), String> {
    let arch = host_arch();
    let mut parts = platform.split('/');
    let (os, a) = (parts.next(), parts.next());
    if os == Some("linux") && (a.is_none() || a == Some(arch)) {
        return Ok(());
    }
    Err(format!(
        "platform {platform:?} is not supported: skiffctl only runs the host's platform (linux/{arch})"
    ))
}

/// The host's architecture in OCI's words.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
