//! The one error type of `specs::net`: every variant names the network,
//! container, file or program it is about, and the cause.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::ports::Protocol;

/// Errors of container networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `get`, `remove` or a connect named a network that does not exist.
    #[error("no such network: {0}")]
    NotFound(String),
    /// `create` with a name (or a prefix of ids) that is taken.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// A prefix of ids that fits more than one network.
    #[error("network {0} is ambiguous ({1} networks match)")]
    Ambiguous(String, usize),
    /// `remove` of a network a container is attached to (docker's text).
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse { name: String, id: String },
    /// `bridge`, `host` and `none` cannot be created, removed or (host, none) attached through netavark.
    #[error("{name} is a pre-defined network and {action}")]
    Predefined { name: String, action: &'static str },
    #[error("invalid network name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidContainerId { id: String, reason: &'static str },
    /// `-p` syntax; the text names the flag as docker does.
    #[error("invalid argument {spec:?} for \"-p, --publish\" flag: {reason}")]
    InvalidPublish { spec: String, reason: String },
    /// A host port taken by another attachment, a netavark port forward or a host socket.
    #[error("Bind for {host}:{port} failed: port is already allocated ({protocol}: {by})")]
    PortAllocated {
        host: String,
        port: u16,
        protocol: Protocol,
        by: String,
    },
    #[error("invalid subnet {subnet:?}: {reason}")]
    InvalidSubnet { subnet: String, reason: String },
    #[error("invalid gateway {gateway} for network {network} ({subnet}): {reason}")]
    InvalidGateway {
        network: String,
        subnet: String,
        gateway: String,
        reason: &'static str,
    },
    /// A requested subnet overlaps another network, a claim of another store or a host route.
    #[error("subnet {subnet} of network {network} overlaps {other}")]
    SubnetOverlap {
        network: String,
        subnet: String,
        other: String,
    },
    #[error("no free subnet for network {network}: every subnet of the pools {pools} overlaps a host route or address, a nameserver or another network")]
    NoSubnet { network: String, pools: String },
    #[error("no free IP address left in network {network} ({subnet})")]
    NoAddress { network: String, subnet: String },
    /// A static IP outside the subnet, reserved, or taken (docker: "Address already in use").
    #[error("invalid address {ip} for container {container} on network {network}: {reason}")]
    InvalidAddress {
        network: String,
        container: String,
        ip: String,
        reason: String,
    },
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached { container: String, network: String },
    #[error("invalid attach request for container {container}: {reason}")]
    InvalidRequest { container: String, reason: String },
    /// netavark's own error text (its `{"error":...}` on stdout), or what it printed instead.
    #[error("netavark {op} of container {container} on network(s) {networks} in {}: {message}", netns.display())]
    Netavark {
        op: &'static str,
        container: String,
        networks: String,
        netns: PathBuf,
        message: String,
    },
    /// A setup failed and undoing it failed too: both are reported.
    #[error("{error}; rolling back also failed: {rollback}")]
    RolledBack {
        error: Box<NetError>,
        rollback: Box<NetError>,
    },
    /// A helper program (iptables, iptables-save, ip) failed.
    #[error("{program} {args}: {message}")]
    Command {
        program: String,
        args: String,
        message: String,
    },
    #[error("{what} not found (looked in {looked})")]
    MissingBinary { what: &'static str, looked: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("invalid JSON in {}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("network namespace {}: {step}: {source}", path.display())]
    Netns {
        path: PathBuf,
        step: &'static str,
        source: nix::Error,
    },
    /// Several independent failures (disconnect reports all of them).
    #[error("{}", join(.0))]
    Multiple(Vec<NetError>),
}

fn join(errors: &[NetError]) -> String {
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

impl NetError {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetError {
        let path = path.to_owned();
        move |source| NetError::Io { what, path, source }
    }

    /// One error, or [`NetError::Multiple`], or `Ok` for none.
    pub(crate) fn collect(mut errors: Vec<NetError>) -> Result<(), NetError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(NetError::Multiple(errors)),
        }
    }

    /// Whether this is a "port is already allocated" refusal.
    pub fn is_port_allocated(&self) -> bool {
        matches!(self, NetError::PortAllocated { .. })
    }
}

/// Text of a host address for messages: docker writes `0.0.0.0` for "all".
pub(crate) fn host_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string())
}
