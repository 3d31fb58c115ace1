//! The flags `run` and `create` share (docker's names), and what they make:
//! a container record. Every error names the flag and the value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use skiff_specs::monitor::RestartPolicy;
use skiff_specs::{Healthcheck, ImageConfig};

use crate::container::record::{Config, HostConfig, MountSpec, NetworkEndpoint, Ulimit};
use crate::image::PullPolicy;
use crate::mounts::{parse_mount_flag, parse_tmpfs_flag, parse_volume_flag};
use crate::spec::resources::{parse_bytes, parse_cpus};

#[derive(Debug, Clone, Args, Default)]
pub struct ContainerOptions {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" removes it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Publish a container's port(s) to the host: [IP:][HOST:]CONTAINER[/udp]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Bind mount a volume: NAME:/PATH[:ro], /HOST:/PATH[:ro] or /PATH (anonymous)
    #[arg(short = 'v', long = "volume", value_name = "SPEC")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount: type=volume|bind|tmpfs,source=…,target=…[,readonly]
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory: /PATH[:OPTIONS]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Connect to a network: bridge (default), host, none or a network's name
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    pub network: Vec<String>,
    /// Add a network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// IPv4 address on the (first) network
    #[arg(long = "ip", value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Memory limit (e.g. 32m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1: unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options: NAME=SOFT[:HARD]
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security options: no-new-privileges, seccomp=unconfined, seccomp=FILE
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Set meta data on a container (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries]
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Kernel parameters (KEY=VALUE)
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Log driver options: max-size=SIZE, max-file=N (json-file only)
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Logging driver (only json-file)
    #[arg(long = "log-driver", default_value = "json-file")]
    pub log_driver: String,
    /// Pull image before running: missing, always, never
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Platform (only the host's)
    #[arg(long)]
    pub platform: Option<String>,
}

/// docker's duration syntax for health flags: 300ms, 1.5s, 2m, 1h.
pub fn parse_duration_ns(value: &str, flag: &str) -> Result<i64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid {flag} value {value:?}: not a duration"))?;
    let mult = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => bail!("invalid {flag} value {value:?}: unknown unit {unit:?}"),
    };
    Ok((n * mult) as i64)
}

/// `KEY=VALUE` lines of an --env-file (blank lines and # comments skipped;
/// a bare KEY takes our own environment's value, as docker does).
fn read_env_file(path: &PathBuf) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--env-file {}: cannot read", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('=') {
            out.push(line.to_owned());
        } else if line.contains(char::is_whitespace) {
            bail!(
                "--env-file {}:{}: variable {line:?} contains whitespace",
                path.display(),
                n + 1
            );
        } else if let Ok(v) = std::env::var(line) {
            out.push(format!("{line}={v}"));
        }
    }
    Ok(out)
}

fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_owned())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

pub fn key_values(values: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    values
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            if k.is_empty() {
                bail!("invalid {flag} value {l:?}");
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

pub fn parse_ulimit(value: &str) -> Result<Ulimit> {
    let bad = || anyhow::anyhow!("invalid --ulimit value {value:?}: use NAME=SOFT[:HARD]");
    let (name, limits) = value.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let parse = |s: &str| -> Result<u64> {
        if s == "-1" || s == "unlimited" {
            return Ok(u64::MAX);
        }
        s.parse().map_err(|_| bad())
    };
    const NAMES: [&str; 16] = [
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
        "as",
    ];
    if !NAMES.contains(&name) {
        bail!("invalid --ulimit value {value:?}: unknown limit {name:?}");
    }
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard {
        bail!("invalid --ulimit value {value:?}: soft limit above hard limit");
    }
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

/// The health check in force: flags over the image's HEALTHCHECK.
fn healthcheck(o: &ContainerOptions, image: &ImageConfig) -> Result<Option<Healthcheck>> {
    if o.no_healthcheck {
        return Ok(None);
    }
    let mut hc = image.container_config().healthcheck.unwrap_or_default();
    if let Some(cmd) = &o.health_cmd {
        hc.test = Some(vec!["CMD-SHELL".to_owned(), cmd.clone()]);
    }
    if let Some(v) = &o.health_interval {
        hc.interval = Some(parse_duration_ns(v, "--health-interval")?);
    }
    if let Some(v) = &o.health_timeout {
        hc.timeout = Some(parse_duration_ns(v, "--health-timeout")?);
    }
    if let Some(v) = &o.health_start_period {
        hc.start_period = Some(parse_duration_ns(v, "--health-start-period")?);
    }
    if let Some(v) = &o.health_start_interval {
        hc.start_interval = Some(parse_duration_ns(v, "--health-start-interval")?);
    }
    if let Some(r) = o.health_retries {
        hc.retries = Some(i64::from(r));
    }
    match hc.test.as_deref() {
        None | Some([]) => Ok(None),
        Some([none]) if none == "NONE" => Ok(None),
        Some(_) => Ok(Some(hc)),
    }
}

/// `--security-opt` values: no-new-privileges and seccomp (unconfined or a
/// profile file, made absolute); label and apparmor options are accepted.
pub fn parse_security_opts(values: &[String]) -> Result<(bool, Option<String>)> {
    let mut no_new_privileges = false;
    let mut seccomp = None;
    for s in values {
        let (k, v) = s.split_once(['=', ':']).unwrap_or((s.as_str(), ""));
        match (k, v) {
            ("no-new-privileges", "" | "true") => no_new_privileges = true,
            ("no-new-privileges", "false") => no_new_privileges = false,
            ("seccomp", "unconfined") => seccomp = Some("unconfined".to_owned()),
            ("seccomp", file) if !file.is_empty() => {
                let path = std::fs::canonicalize(file).with_context(|| {
                    format!("--security-opt seccomp={file}: cannot read the profile")
                })?;
                seccomp = Some(path.display().to_string());
            }
            ("label" | "apparmor", _) => {}
            _ => bail!("invalid --security-opt value {s:?}"),
        }
    }
    Ok((no_new_privileges, seccomp))
}

/// What the flags say, checked, as the record's Config and HostConfig.
pub fn to_record(
    o: &ContainerOptions,
    image: &ImageConfig,
    cmd: &[String],
) -> Result<(Config, HostConfig)> {
    if let Some(p) = &o.platform {
        let host = skiff_specs::Platform::host();
        if !p.starts_with(&format!("{}/{}", host.os, host.architecture)) {
            bail!(
                "--platform {p}: only the host's platform ({}/{}) runs here",
                host.os,
                host.architecture
            );
        }
    }
    if o.log_driver != "json-file" {
        bail!("--log-driver {}: only json-file is supported", o.log_driver);
    }
    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(read_env_file(f)?);
    }
    env.extend(o.env.iter().filter_map(|e| env_entry(e)));

    let mut mounts: Vec<MountSpec> = Vec::new();
    for v in &o.volume {
        mounts.push(parse_volume_flag(v)?);
    }
    for m in &o.mount {
        mounts.push(parse_mount_flag(m)?);
    }
    for t in &o.tmpfs {
        mounts.push(parse_tmpfs_flag(t)?);
    }
    let mut seen = std::collections::HashSet::new();
    for m in &mounts {
        if !seen.insert(m.target.clone()) {
            bail!("duplicate mount point: {}", m.target);
        }
    }

    let (no_new_privileges, seccomp) = parse_security_opts(&o.security_opt)?;

    let restart =
        RestartPolicy::parse(&o.restart).map_err(|e| anyhow::anyhow!("--restart: {e}"))?;
    if o.rm && restart != RestartPolicy::No {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }

    let mut networks: Vec<NetworkEndpoint> = o
        .network
        .iter()
        .map(|n| NetworkEndpoint {
            network: n.clone(),
            aliases: Vec::new(),
            ipv4_address: None,
        })
        .collect();
    let network_mode = networks
        .first()
        .map_or_else(|| "bridge".to_owned(), |n| n.network.clone());
    if matches!(network_mode.as_str(), "host" | "none") && networks.len() > 1 {
        bail!("--network {network_mode} cannot be combined with other networks");
    }
    if !o.network_alias.is_empty() || o.ip.is_some() {
        match networks.first_mut() {
            Some(first) if !matches!(first.network.as_str(), "bridge" | "host" | "none") => {
                first.aliases = o.network_alias.clone();
                first.ipv4_address = o.ip.clone();
            }
            _ => bail!("--network-alias and --ip need a user-defined network (--network NAME)"),
        }
    }
    if network_mode == "host" && !o.publish.is_empty() {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }

    let mut log_max_size = 0;
    let mut log_max_file = 1;
    for opt in &o.log_opt {
        match opt.split_once('=') {
            Some(("max-size", v)) => log_max_size = parse_bytes(v, "--log-opt max-size")? as u64,
            Some(("max-file", v)) => {
                log_max_file = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .with_context(|| format!("invalid --log-opt max-file value {v:?}"))?
            }
            _ => bail!("invalid --log-opt value {opt:?}: json-file takes max-size and max-file"),
        }
    }

    let image_cfg = image.container_config();
    let mut exposed: Vec<String> = image_cfg
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys().cloned())
        .collect();
    for e in &o.expose {
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
        hostname: o.hostname.clone().unwrap_or_default(),
        domainname: o.domainname.clone().unwrap_or_default(),
        user: o.user.clone(),
        env,
        cmd: (!cmd.is_empty()).then(|| cmd.to_vec()),
        entrypoint: o.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        working_dir: o.workdir.clone(),
        labels: key_values(&o.label, "--label")?,
        tty: o.tty,
        open_stdin: o.interactive,
        stop_signal: o.stop_signal.clone().or(image_cfg.stop_signal),
        stop_timeout: o.stop_timeout,
        healthcheck: healthcheck(o, image)?,
        exposed_ports: exposed,
    };
    let host = HostConfig {
        mounts,
        publish: o.publish.clone(),
        publish_all: o.publish_all,
        network_mode,
        networks,
        restart,
        auto_remove: o.rm,
        memory: o
            .memory
            .as_deref()
            .map(|m| parse_bytes(m, "--memory"))
            .transpose()?
            .unwrap_or(0),
        memory_reservation: o
            .memory_reservation
            .as_deref()
            .map(|m| parse_bytes(m, "--memory-reservation"))
            .transpose()?
            .unwrap_or(0),
        memory_swap: match o.memory_swap.as_deref() {
            None => 0,
            Some("-1") => -1,
            Some(m) => parse_bytes(m, "--memory-swap")?,
        },
        nano_cpus: o.cpus.as_deref().map(parse_cpus).transpose()?.unwrap_or(0),
        pids_limit: o.pids_limit.unwrap_or(0),
        ulimits: o
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_>>()?,
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        read_only: o.read_only,
        privileged: o.privileged,
        no_new_privileges,
        seccomp,
        init: o.init,
        extra_hosts: o.add_host.clone(),
        dns: o.dns.clone(),
        dns_search: o.dns_search.clone(),
        sysctls: key_values(&o.sysctl, "--sysctl")?,
        shm_size: o
            .shm_size
            .as_deref()
            .map(|s| parse_bytes(s, "--shm-size"))
            .transpose()?
            .unwrap_or(0),
        log_max_size,
        log_max_file,
    };
    // The capability names are checked now, not at start.
    crate::spec::caps::effective(&host.cap_add, &host.cap_drop, host.privileged)?;
    for h in &host.extra_hosts {
        let ok = h
            .split_once(':')
            .is_some_and(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok());
        if !ok {
            bail!("invalid --add-host value {h:?}: use HOST:IP");
        }
    }
    Ok((config, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() -> Result<()> {
        assert_eq!(
            parse_duration_ns("300ms", "--health-interval")?,
            300_000_000
        );
        assert_eq!(
            parse_duration_ns("1.5s", "--health-interval")?,
            1_500_000_000
        );
        assert_eq!(
            parse_duration_ns("2m", "--health-interval")?,
            120_000_000_000
        );
        assert!(parse_duration_ns("2x", "--health-interval").is_err());
        Ok(())
    }

    #[test]
    fn ulimits() -> Result<()> {
        let u = parse_ulimit("nofile=1024:2048")?;
        assert_eq!((u.soft, u.hard), (1024, 2048));
        assert!(parse_ulimit("nofile=2:1").is_err());
        assert!(parse_ulimit("frob=1").is_err());
        Ok(())
    }

    #[test]
    fn flags_to_record() -> Result<()> {
        let o = ContainerOptions {
            memory: Some("32m".into()),
            cpus: Some("0.5".into()),
            restart: "on-failure:3".into(),
            volume: vec!["data:/data".into()],
            label: vec!["a=b".into()],
            health_cmd: Some("true".into()),
            log_driver: "json-file".into(),
            ..Default::default()
        };
        let (c, h) = to_record(&o, &ImageConfig::default(), &["sh".into()])?;
        assert_eq!(h.memory, 32 << 20);
        assert_eq!(h.nano_cpus, 500_000_000);
        assert_eq!(h.restart, RestartPolicy::OnFailure { max: 3 });
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
        assert!(c.healthcheck.is_some());
        assert_eq!(h.network_mode, "bridge");
        let bad = ContainerOptions {
            memory: Some("lots".into()),
            log_driver: "json-file".into(),
            restart: "no".into(),
            ..Default::default()
        };
        let e = to_record(&bad, &ImageConfig::default(), &[])
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("--memory")));
        Ok(())
    }
}
