//! The resolved compose model. Field names and their serialised form follow
//! the compose specification, so that serialising a [`Service`] gives what
//! `docker compose config` prints for it (and what `load` reads back).
//! Everything here is resolved: paths are absolute, variables interpolated,
//! short syntaxes expanded, `env_file`s read into `environment`, and
//! `deploy.resources` folded into `mem_limit`/`cpus`/`pids_limit`/`mem_reservation`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Serialize, Serializer};

use super::duration;

/// A loaded project: what `skiffctl compose` works on.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The project name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`, or the directory's).
    pub name: String,
    /// The project directory: relative paths were resolved against it.
    pub working_dir: PathBuf,
    /// The compose files loaded (`-f`, or the ones found), absolute.
    pub compose_files: Vec<PathBuf>,
    /// The enabled services, in file order.
    pub services: Vec<Service>,
    /// Networks by their key in the file; `default` when a service uses it.
    pub networks: BTreeMap<String, NetworkDef>,
    pub volumes: BTreeMap<String, VolumeDef>,
    pub secrets: BTreeMap<String, SecretDef>,
    pub configs: BTreeMap<String, ConfigDef>,
    /// Services left out because none of their profiles is active.
    pub disabled_services: Vec<String>,
    /// Things worth telling the user that do not stop the load (unset
    /// variables, ignored fields).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Service {
    #[serde(skip)]
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// always, never, missing, build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// None: the image's; `Some([])`: cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `env_file`s then `environment`; None: declared without a value and not
    /// set anywhere (left out of the container).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// `3000`, `8000-8010`, `53/udp`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    /// `/path[:options]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// By the network's key in the project; `default` when none is declared
    /// and there is no `network_mode`.
    #[serde(
        serialize_with = "serialize_service_networks",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// host, none, bridge, service:NAME, container:NAME.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// no, always, on-failure[:N], unless-stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// `scale` / `deploy.replicas` (1 when neither is set).
    #[serde(rename = "scale", skip_serializing_if = "is_one")]
    pub replicas: u32,
    /// Bytes (`mem_limit` or `deploy.resources.limits.memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<u64>,
    /// Bytes (`mem_reservation` or `deploy.resources.reservations.memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<u64>,
    /// Bytes of memory plus swap; -1: unlimited swap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<i64>,
    /// `cpus` or `deploy.resources.limits.cpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// `pids_limit` or `deploy.resources.limits.pids`; -1: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(
        rename = "stop_grace_period",
        serialize_with = "duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_grace_period_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// Whether `up` attaches to the service's output (compose's `attach`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `host:ip`, docker's `--add-host` form (written `host=ip` in YAML).
    #[serde(
        serialize_with = "serialize_extra_hosts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Build {
    /// An absolute directory, or a URL (git, http) as written.
    pub context: String,
    /// Relative to the context, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// None: declared without a value and not set in the environment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<BuildSecret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// More tags for the built image, besides `image`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A top-level secret made available to `RUN --mount=type=secret,id=TARGET`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildSecret {
    pub source: String,
    /// The secret's id in the build (the source's name unless set).
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Port {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ingress (compose's default) or host; both publish on the host here.
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u16,
    /// A host port or range (`8000-8010`: any free one of them); None: a random one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// tcp, udp or sctp.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceVolume {
    /// volume, bind or tmpfs.
    #[serde(rename = "type")]
    pub kind: String,
    /// The volume's key in the project (volume; None: anonymous) or an
    /// absolute host path (bind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<VolumeBind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<VolumeTmpfs>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VolumeBind {
    /// private, rprivate, shared, rshared, slave, rslave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create the host directory when missing (implied by the short syntax).
    #[serde(skip_serializing_if = "is_false")]
    pub create_host_path: bool,
    /// z or Z.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VolumeOptions {
    /// Do not copy the image's content at the target into a new volume.
    #[serde(skip_serializing_if = "is_false")]
    pub nocopy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VolumeTmpfs {
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Permission bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

/// What a dependent service waits for (compose's `service_started`,
/// `service_healthy`, `service_completed_successfully`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum DependencyCondition {
    #[default]
    #[serde(rename = "service_started")]
    Started,
    #[serde(rename = "service_healthy")]
    Healthy,
    #[serde(rename = "service_completed_successfully")]
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub condition: DependencyCondition,
    /// Restart this service when the dependency is restarted by compose.
    pub restart: bool,
    /// false: only a warning when the dependency is missing or fails.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`, or `["NONE"]`; empty: the image's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(
        rename = "interval",
        serialize_with = "duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval_ns: Option<u64>,
    #[serde(
        rename = "timeout",
        serialize_with = "duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(
        rename = "start_period",
        serialize_with = "duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period_ns: Option<u64>,
    #[serde(
        rename = "start_interval",
        serialize_with = "duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_interval_ns: Option<u64>,
    /// No health check at all, not even the image's (`disable: true` or `test: [NONE]`).
    #[serde(skip_serializing_if = "is_false")]
    pub disable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    /// -1: unlimited.
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    /// json-file (the only driver here).
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A secret or config as a service mounts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceFile {
    /// The key of the top-level secret/config.
    pub source: String,
    /// Absolute path in the container: `/run/secrets/SOURCE` for secrets and
    /// `/SOURCE` for configs unless set.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Permission bits (read-only 0444 by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct NetworkDef {
    /// The network's real name: `PROJECT_KEY` unless `name:` is set or it is external.
    pub name: String,
    /// bridge (the only driver here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    /// Created outside the project; never created or removed by it.
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct VolumeDef {
    /// The volume's real name: `PROJECT_KEY` unless `name:` is set or it is external.
    pub name: String,
    /// local (the only driver here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret: its content comes from a file or a variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SecretDef {
    pub name: String,
    /// Absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The variable holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The content of `environment`'s variable, read at load.
    #[serde(skip)]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A top-level config: a file, a variable's value, or inline content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ConfigDef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The content of `environment`'s variable, read at load.
    #[serde(skip)]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn serialize_extra_hosts<S: Serializer>(hosts: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(hosts.iter().map(|h| match h.split_once(':') {
        Some((host, ip)) => format!("{host}={ip}"),
        None => h.clone(),
    }))
}

/// A network joined without settings is written `name: null`, as compose does.
fn serialize_service_networks<S: Serializer>(
    networks: &BTreeMap<String, ServiceNetwork>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(
        networks
            .iter()
            .map(|(k, n)| (k, (*n != ServiceNetwork::default()).then_some(n))),
    )
}
