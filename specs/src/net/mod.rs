//! Docker-style container networking through podman's network stack:
//! netavark 1.4 (bridges, veths, iptables rules) and aardvark-dns 1.4 (DNS
//! by container name), driven through netavark's JSON `setup` and
//! `teardown` on a network namespace file that the caller makes
//! ([`Netns`]) and hands to the runtime by path.
//!
//! ```text
//! let nets = Networks::open(NetConfig::discover(state_dir, run_dir)?)?;
//! nets.check_ports_free(&ports)?;                  // before creating anything
//! let ns = Netns::create(run_dir, &container_id)?; // the runtime joins ns.path
//! let att = nets.connect(&AttachRequest { netns: ns.path.clone(), .. })?;
//! // /etc/hosts, /etc/resolv.conf, /etc/hostname: hosts_file, resolv_conf, hostname_file
//! nets.disconnect(&att, &ns.path)?;
//! ns.remove()?;
//! ```
//!
//! # What is where
//!
//! - `STATE_DIR` (e.g. /var/lib/skiff/engine/networks): `networks/<id>.json`,
//!   `ipam/<network id>.json` (addresses in use), `attachments/<container>.json`
//!   and `lock`, the store's flock; JSON is written atomically (temp + rename).
//! - `RUN_DIR` (e.g. /run/skiff-engine): `netns/<id>` namespace files and
//!   `aardvark/`, aardvark-dns's configuration and pid (netavark's
//!   `--config`). It describes live containers and a live process, so it
//!   belongs in a tmpfs that a reboot empties, as podman keeps it in /run.
//! - `HOST_DIR` (default /run/skiff-net), shared by every store on the
//!   machine: `subnets/` (claims, see `claims.rs`) and `lock`, taken around
//!   every netavark run and our own iptables changes.
//!
//! # What netavark 1.4 does on the host (measured on Debian 12)
//!
//! - sysctls: `net.ipv4.ip_forward=1` (host-wide, which the kernel mirrors
//!   into `net.ipv4.conf.*.forwarding` and which turns
//!   `net.ipv4.conf.all.accept_redirects` off); it is never set back.
//!   `net.ipv4.conf.<bridge>.route_localnet=1` on each bridge it makes, so
//!   that 127.0.0.1 can be forwarded to containers (gone with the bridge).
//!   Inside the container's namespace it sets `net.ipv6.conf.eth0.autoconf=0`.
//!   This module itself writes no sysctl and changes no other host setting.
//! - a bridge per network (`sk-<12 hex of the id>`, gateway address, brought
//!   up) and a veth per container; the bridge goes with its last container.
//! - iptables (`NETAVARK_FW=iptables`): per network a `nat` chain
//!   `NETAVARK-<hash>` (masquerade of the subnet, outbound NAT), accept rules
//!   in `filter` NETAVARK_FORWARD, and with the `isolate` option we always set,
//!   NETAVARK_ISOLATION_1/2 rules that drop traffic between different
//!   networks' bridges (docker's isolation), reached by a FORWARD jump that
//!   its teardown deletes with any network's last container, even while
//!   other networks still have rules there; per container with ports a
//!   `NETAVARK-DN-<hash>` chain with the DNAT rules, reached from
//!   NETAVARK-HOSTPORT-DNAT for local destinations in PREROUTING and OUTPUT
//!   (so published ports answer on 127.0.0.1 and every host address, and for
//!   other containers), and marks for masquerading connections from the
//!   container's own subnet and from 127.0.0.1 (hairpin, localhost).
//!   Its shared chains stay when their last network goes; `firewall.rs`
//!   removes them then.
//! - aardvark-dns, started per `--config` directory while a network with DNS
//!   has containers, listening on port 53 of the gateways.
//!
//! # What we add
//!
//! Our own subnet allocation (pools, host routes, claims across stores) and
//! IP allocation (netavark takes static IPs); "port is already allocated"
//! checks before anything is set up; hairpin mode on bridge ports
//! (`hairpin.rs`: needed here because br_netfilter is built in); stand-in
//! veths and namespaces so teardown works when the namespace is gone; rollback
//! of failed setups; a FORWARD jump of our own to the isolation rules that
//! netavark never deletes (`firewall.rs`), so networks stay isolated while
//! other stores tear theirs down; removal of netavark's idle shared chains;
//! and the container's hosts, resolv.conf and hostname files.

mod attach;
mod claims;
mod error;
mod files;
mod firewall;
mod fsutil;
mod hairpin;
mod ipam;
mod netavark;
mod netns;
mod ports;
mod store;
mod subnet;

use std::path::{Path, PathBuf};

pub use attach::{AttachRequest, Attachment, Interface, NetworkRequest};
pub use error::NetError;
pub use files::{
    hostname_file, hosts_file, resolv_conf, resolv_conf_from, FALLBACK_NAMESERVERS,
    HOST_RESOLV_CONF,
};
pub use netns::{netns_dir, Netns};
pub use ports::{parse_publish, PortMapping, Protocol};
pub use store::{CreateOptions, Driver, Network, Networks, DEFAULT_NETWORK, PREDEFINED};
pub use subnet::Ipv4Net;

/// The host-wide directory shared by every store (subnet claims, the netavark lock).
pub const DEFAULT_HOST_DIR: &str = "/run/skiff-net";

/// Where podman's packages put netavark and aardvark-dns (Debian: /usr/lib/podman).
const HELPER_DIRS: [&str; 4] = [
    "/usr/libexec/podman",
    "/usr/lib/podman",
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
];
const SBIN_DIRS: [&str; 6] = [
    "/usr/sbin",
    "/sbin",
    "/usr/local/sbin",
    "/usr/bin",
    "/bin",
    "/usr/local/bin",
];

/// Where a store keeps its files and which programs it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Networks, IPAM and attachment records, e.g. /var/lib/skiff/engine/networks.
    pub state_dir: PathBuf,
    /// Namespace files and aardvark-dns's configuration, e.g. /run/skiff-engine.
    pub run_dir: PathBuf,
    pub netavark: PathBuf,
    pub aardvark: PathBuf,
    /// iptables; netavark runs it from PATH, which we set to start with its directory.
    pub iptables: PathBuf,
    /// Shared by every store on the host: [`DEFAULT_HOST_DIR`].
    pub host_dir: PathBuf,
}

impl NetConfig {
    /// Finds netavark and aardvark-dns (/usr/libexec/podman, /usr/lib/podman,
    /// and the same under /usr/local) and iptables (PATH, then the sbin
    /// directories).
    pub fn discover(
        state_dir: impl Into<PathBuf>,
        run_dir: impl Into<PathBuf>,
    ) -> Result<NetConfig, NetError> {
        let helper = |what: &'static str, name: &str| {
            HELPER_DIRS
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| NetError::MissingBinary {
                    what,
                    looked: HELPER_DIRS.join(", "),
                })
        };
        let netavark = helper("netavark", "netavark")?;
        let aardvark = helper("aardvark-dns", "aardvark-dns")?;
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
        dirs.extend(SBIN_DIRS.iter().map(PathBuf::from));
        let iptables = dirs
            .iter()
            .map(|d| d.join("iptables"))
            .find(|p| p.is_absolute() && p.is_file())
            .ok_or_else(|| NetError::MissingBinary {
                what: "iptables (netavark runs it)",
                looked: format!("PATH and {}", SBIN_DIRS.join(", ")),
            })?;
        Ok(NetConfig {
            state_dir: state_dir.into(),
            run_dir: run_dir.into(),
            netavark,
            aardvark,
            iptables,
            host_dir: PathBuf::from(DEFAULT_HOST_DIR),
        })
    }
}
