//! A compose service as an engine container: its Config and HostConfig,
//! with the project's names for networks and volumes and compose's labels.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use skiff_specs::monitor::RestartPolicy;
use skiff_specs::ImageConfig;

use crate::compose::{Project, Service};
use crate::container::record::{Config, HostConfig, MountKind, MountSpec, NetworkEndpoint, Ulimit};
use crate::options::parse_security_opts;

/// Where compose mounts secrets.
const SECRETS_DIR: &str = "/run/secrets";

/// The Config and HostConfig of container `number` of `svc`.
pub fn container(
    project: &Project,
    svc: &Service,
    number: u32,
    image: &ImageConfig,
) -> Result<(Config, HostConfig)> {
    let image_cfg = image.container_config();
    let mut labels = project.container_labels(svc, number);
    labels.extend(svc.labels.clone());
    let healthcheck = match &svc.healthcheck {
        Some(h) if h.disable => None,
        Some(h) if h.test.first().is_some_and(|t| t == "NONE") => None,
        Some(h) => {
            let mut base = image_cfg.healthcheck.clone().unwrap_or_default();
            if !h.test.is_empty() {
                base.test = Some(h.test.clone());
            }
            let ns = |v: Option<u64>| v.map(|n| n as i64);
            base.interval = ns(h.interval_ns).or(base.interval);
            base.timeout = ns(h.timeout_ns).or(base.timeout);
            base.start_period = ns(h.start_period_ns).or(base.start_period);
            base.start_interval = ns(h.start_interval_ns).or(base.start_interval);
            base.retries = h.retries.map(|r| r as i64).or(base.retries);
            base.test.is_some().then_some(base)
        }
        None => image_cfg.healthcheck.clone().filter(|h| {
            h.test
                .as_ref()
                .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
        }),
    };
    let mut exposed: Vec<String> = image_cfg
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys().cloned())
        .collect();
    for e in &svc.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    let config = Config {
        hostname: svc.hostname.clone().unwrap_or_default(),
        domainname: svc.domainname.clone().unwrap_or_default(),
        user: svc.user.clone(),
        env: svc
            .environment
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect(),
        cmd: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        working_dir: svc.working_dir.clone(),
        labels,
        tty: svc.tty,
        open_stdin: svc.stdin_open,
        stop_signal: svc.stop_signal.clone().or(image_cfg.stop_signal.clone()),
        stop_timeout: svc
            .stop_grace_period_ns
            .map(|ns| ns.div_ceil(1_000_000_000)),
        healthcheck,
        exposed_ports: exposed,
    };

    let mut mounts = Vec::new();
    for v in &svc.volumes {
        let kind = match v.kind.as_str() {
            "volume" => MountKind::Volume,
            "bind" => MountKind::Bind,
            "tmpfs" => MountKind::Tmpfs,
            other => bail!(
                "services.{}.volumes: type {other:?} is not supported",
                svc.name
            ),
        };
        let source = match (kind, &v.source) {
            (MountKind::Volume, Some(key)) => project.volume_name(key),
            (MountKind::Bind, Some(path)) => path.clone(),
            _ => String::new(),
        };
        let mut tmpfs_options = Vec::new();
        if let Some(t) = &v.tmpfs {
            if let Some(size) = t.size {
                tmpfs_options.push(format!("size={size}"));
            }
            if let Some(mode) = t.mode {
                tmpfs_options.push(format!("mode={mode:o}"));
            }
        }
        mounts.push(MountSpec {
            kind,
            source,
            target: v.target.clone(),
            read_only: v.read_only,
            no_copy: v.volume.as_ref().is_some_and(|o| o.nocopy),
            tmpfs_options: tmpfs_options.join(","),
        });
    }
    for t in &svc.tmpfs {
        mounts.push(crate::mounts::parse_tmpfs_flag(t)?);
    }
    for (files, defs_secrets) in [(&svc.secrets, true), (&svc.configs, false)] {
        for f in files.iter() {
            let target = if f.target.starts_with('/') {
                f.target.clone()
            } else if defs_secrets {
                format!("{SECRETS_DIR}/{}", f.target)
            } else {
                format!("/{}", f.target)
            };
            let path = if defs_secrets {
                project.secrets.get(&f.source).and_then(|s| s.file.clone())
            } else {
                project.configs.get(&f.source).and_then(|c| c.file.clone())
            };
            let Some(path) = path else {
                bail!(
                    "services.{}.{}: {} has no file source",
                    svc.name,
                    if defs_secrets { "secrets" } else { "configs" },
                    f.source
                );
            };
            mounts.push(MountSpec {
                kind: MountKind::Bind,
                source: path.display().to_string(),
                target,
                read_only: true,
                no_copy: false,
                tmpfs_options: String::new(),
            });
        }
    }

    let publish: Vec<String> = svc
        .ports
        .iter()
        .map(|p| {
            let mut s = String::new();
            if let Some(ip) = &p.host_ip {
                s.push_str(ip);
                s.push(':');
            }
            match &p.published {
                Some(h) => s.push_str(&format!("{h}:")),
                None if p.host_ip.is_some() => s.push(':'),
                None => {}
            }
            s.push_str(&format!("{}/{}", p.target, p.protocol));
            s
        })
        .collect();

    let (network_mode, networks) = match svc.network_mode.as_deref() {
        Some("host") => ("host".to_owned(), Vec::new()),
        Some("none") => ("none".to_owned(), Vec::new()),
        Some(other) => bail!(
            "services.{}.network_mode: {other:?} is not supported by skiffctl (host, none)",
            svc.name
        ),
        None => {
            let mut eps: Vec<NetworkEndpoint> = Vec::new();
            let mut keys: Vec<(&String, &crate::compose::ServiceNetwork)> =
                svc.networks.iter().collect();
            // Higher priority first, as compose connects them.
            keys.sort_by_key(|(_, n)| std::cmp::Reverse(n.priority.unwrap_or(0)));
            for (key, n) in keys {
                let mut aliases = vec![svc.name.clone()];
                aliases.extend(n.aliases.clone());
                eps.push(NetworkEndpoint {
                    network: project.network_name(key),
                    aliases,
                    ipv4_address: n.ipv4_address.clone(),
                });
            }
            if eps.is_empty() {
                eps.push(NetworkEndpoint {
                    network: project.network_name("default"),
                    aliases: vec![svc.name.clone()],
                    ipv4_address: None,
                });
            }
            (eps[0].network.clone(), eps)
        }
    };

    let restart = match svc.restart.as_deref() {
        None => RestartPolicy::No,
        Some(r) => RestartPolicy::parse(r)
            .map_err(|e| anyhow::anyhow!("services.{}.restart: {e}", svc.name))?,
    };
    let (no_new_privileges, seccomp) = parse_security_opts(&svc.security_opt)?;
    let mut log_max_size = 0;
    let mut log_max_file = 1;
    if let Some(l) = &svc.logging {
        if let Some(v) = l.options.get("max-size") {
            log_max_size =
                crate::spec::resources::parse_bytes(v, "logging.options.max-size")? as u64;
        }
        if let Some(v) = l.options.get("max-file") {
            log_max_file = v.parse().unwrap_or(1);
        }
    }
    let host = HostConfig {
        mounts,
        publish,
        publish_all: false,
        network_mode,
        networks,
        restart,
        auto_remove: false,
        memory: svc.mem_limit.map_or(0, |m| m as i64),
        memory_reservation: svc.mem_reservation.map_or(0, |m| m as i64),
        memory_swap: svc.memswap_limit.unwrap_or(0),
        nano_cpus: svc.cpus.map_or(0, |c| (c * 1e9) as i64),
        pids_limit: svc.pids_limit.unwrap_or(0),
        ulimits: svc
            .ulimits
            .iter()
            .map(|(name, u)| {
                let lim = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
                Ulimit {
                    name: name.clone(),
                    soft: lim(u.soft),
                    hard: lim(u.hard),
                }
            })
            .collect(),
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        read_only: svc.read_only,
        privileged: svc.privileged,
        no_new_privileges,
        seccomp,
        init: svc.init.unwrap_or(false),
        extra_hosts: svc.extra_hosts.clone(),
        dns: svc.dns.clone(),
        dns_search: svc.dns_search.clone(),
        sysctls: svc.sysctls.clone(),
        shm_size: svc.shm_size.map_or(0, |s| s as i64),
        log_max_size,
        log_max_file,
    };
    crate::spec::caps::effective(&host.cap_add, &host.cap_drop, host.privileged)?;
    Ok((config, host))
}

/// Labels every resource of the project carries.
pub fn project_labels(project: &Project, kind: &str, key: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (super::PROJECT_LABEL.to_owned(), project.name.clone()),
        (format!("com.docker.compose.{kind}"), key.to_owned()),
    ])
}
