//! What the engine records about a container (docker's Config and
//! HostConfig, trimmed to what skiffctl supports), kept as
//! `containers/ID/container.json`. The monitor keeps the container's life
//! (running, exit code, health) in `containers/ID/state.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use skiff_specs::monitor::RestartPolicy;
use skiff_specs::{Descriptor, Healthcheck};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// `sha256:` digest of the image config (docker's image id).
    pub image_id: String,
    /// The image manifest in the store.
    pub manifest: Descriptor,
    pub config: Config,
    pub host: HostConfig,
    /// What exists while the container is started (mounted rootfs, network).
    #[serde(default)]
    pub active: Active,
}

/// docker's container Config: what runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    /// `--user`, else the image's (resolved at start).
    #[serde(default)]
    pub user: Option<String>,
    /// `-e`/`--env-file` over the image's Env.
    #[serde(default)]
    pub env: Vec<String>,
    /// The command after the image name.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before KILL (docker's default 10).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// The health check in force (flags over the image's); None: none.
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    /// Ports the image or `--expose` exposes (`80/tcp`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

/// docker's HostConfig: how it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostConfig {
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// `-p` values as given (ranges and `-P` resolved when the container starts).
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub publish_all: bool,
    /// `bridge` (the default network), `host`, `none` or a network name.
    pub network_mode: String,
    /// More networks (after the first, from `--network`), with aliases.
    #[serde(default)]
    pub networks: Vec<NetworkEndpoint>,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub memory: i64,
    #[serde(default)]
    pub memory_reservation: i64,
    #[serde(default)]
    pub memory_swap: i64,
    /// CPUs in units of 1e-9 (docker's NanoCpus).
    #[serde(default)]
    pub nano_cpus: i64,
    #[serde(default)]
    pub pids_limit: i64,
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// None: the default profile; Some("unconfined"); Some(path's JSON).
    #[serde(default)]
    pub seccomp: Option<String>,
    #[serde(default)]
    pub init: bool,
    /// `--add-host` entries, `name:ip`.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// /dev/shm size in bytes; 0: 64 MiB.
    #[serde(default)]
    pub shm_size: i64,
    #[serde(default)]
    pub log_max_size: u64,
    #[serde(default)]
    pub log_max_file: u32,
}

/// A network the container joins, with its aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEndpoint {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ipv4_address: Option<String>,
}

/// A mount from `-v`, `--mount` or `--tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Volume name or host path (empty for tmpfs and anonymous volumes).
    #[serde(default)]
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    /// Don't fill a new named volume from the image (`volume-nocopy`).
    #[serde(default)]
    pub no_copy: bool,
    /// tmpfs options (`size=…,mode=…`).
    #[serde(default)]
    pub tmpfs_options: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Volume => "volume",
            Self::Bind => "bind",
            Self::Tmpfs => "tmpfs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// What the engine set up to start the container, torn down when it stops
/// for good (and on `rm`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Active {
    /// The overlay rootfs is mounted at the bundle's rootfs.
    #[serde(default)]
    pub rootfs_mounted: bool,
    /// The network namespace file, when the container has its own.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The network attachment (specs::net's Attachment as JSON).
    #[serde(default)]
    pub network: Option<serde_json::Value>,
}
