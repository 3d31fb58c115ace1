//! The network store: networks as JSON files under `STATE_DIR/networks`,
//! created, looked up, listed and removed under the store's flock
//! (`STATE_DIR/lock`), plus the pre-defined `bridge`, `host` and `none`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::attach::Record;
use super::claims::Claims;
use super::error::{host_text, NetError};
use super::firewall::Iptables;
use super::fsutil::{self, Lock, TEMP_PREFIX};
use super::ipam;
use super::ports::{self, PortMapping};
use super::subnet::{self, Ipv4Net, Taken, POOLS};
use super::NetConfig;

/// docker's name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Names that `create` and `remove` refuse.
pub const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// docker's driver names: `bridge` networks go through netavark; `host`
/// (the host's namespace) and `null` (`none`: a namespace with `lo` only)
/// need no setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
}

/// A network. Bridge networks have a subnet, gateway and bridge interface;
/// `host` and `none` have none of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// The host's bridge interface, `sk-` and 12 hex digits of the id.
    pub bridge: Option<String>,
    /// No outbound NAT, no default route in containers.
    pub internal: bool,
    /// aardvark-dns answers for container names and aliases at the gateway.
    pub dns: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

impl Network {
    pub fn is_bridge(&self) -> bool {
        self.driver == Driver::Bridge
    }

    /// The first 12 digits of the id, as docker shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    fn predefined(name: &str, driver: Driver) -> Network {
        let digest = Sha256::digest(format!("skiff predefined network {name}").as_bytes());
        Network {
            id: digest.iter().map(|b| format!("{b:02x}")).collect(),
            name: name.to_string(),
            driver,
            subnet: None,
            gateway: None,
            bridge: None,
            internal: false,
            dns: false,
            labels: BTreeMap::new(),
            created: String::new(),
        }
    }
}

/// `docker network create` options.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// `10.1.2.0/24`; `None` picks a free one from the pools.
    pub subnet: Option<String>,
    /// Default: the subnet's first address.
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// DNS by container name and alias (default true, as on docker's user networks).
    pub dns: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            subnet: None,
            gateway: None,
            internal: false,
            labels: BTreeMap::new(),
            dns: true,
        }
    }
}

pub(crate) fn network_file(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("networks").join(format!("{id}.json"))
}

/// The network store (see the module text of `specs::net`).
#[derive(Debug)]
pub struct Networks {
    pub(crate) cfg: NetConfig,
    pub(crate) claims: Claims,
    pub(crate) iptables: Iptables,
}

fn check_name(name: &str) -> Result<(), NetError> {
    let bad = |reason| NetError::InvalidName {
        name: name.to_string(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(bad("empty")),
        Some(b) if !b.is_ascii_alphanumeric() => {
            return Err(bad("must start with a letter or digit"))
        }
        _ => {}
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err(bad("only letters, digits and _.- are allowed"));
    }
    if name.len() > 128 {
        return Err(bad("longer than 128 characters"));
    }
    Ok(())
}

impl Networks {
    /// Opens (making its directories) the store of `cfg`. Fails if netavark,
    /// aardvark-dns or iptables is missing.
    pub fn open(cfg: NetConfig) -> Result<Networks, NetError> {
        for (what, path) in [
            ("netavark", &cfg.netavark),
            ("aardvark-dns", &cfg.aardvark),
            ("iptables", &cfg.iptables),
        ] {
            if !path.is_file() {
                return Err(NetError::MissingBinary {
                    what,
                    looked: path.display().to_string(),
                });
            }
        }
        let mut cfg = cfg;
        for dir in ["networks", "ipam", "attachments"] {
            fsutil::create_dir(&cfg.state_dir.join(dir))?;
        }
        fsutil::create_dir(&cfg.run_dir)?;
        fsutil::create_dir(&cfg.host_dir)?;
        // Claims name their store by path: one spelling of it.
        cfg.state_dir =
            fs::canonicalize(&cfg.state_dir).map_err(NetError::io("resolving", &cfg.state_dir))?;
        let claims = Claims::open(&cfg.host_dir)?;
        let iptables = Iptables::new(&cfg.iptables);
        let store = Networks {
            cfg,
            claims,
            iptables,
        };
        // Claims live in a tmpfs: after a reboot, claim the store's subnets again.
        for net in store.load_all()? {
            if let Some(subnet) = net.subnet {
                store.claims.claim(&subnet, &store.cfg.state_dir, &net.id)?;
            }
        }
        Ok(store)
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The store's flock: every change of networks, addresses and attachments.
    pub(crate) fn lock(&self) -> Result<Lock, NetError> {
        fsutil::lock(&self.cfg.state_dir.join("lock"))
    }

    /// The host-wide flock: every netavark run and our own iptables changes,
    /// so netavarks of different stores never race on shared chains.
    pub(crate) fn host_lock(&self) -> Result<Lock, NetError> {
        fsutil::lock(&self.cfg.host_dir.join("lock"))
    }

    pub(crate) fn load_all(&self) -> Result<Vec<Network>, NetError> {
        let dir = self.cfg.state_dir.join("networks");
        let entries = fs::read_dir(&dir).map_err(NetError::io("listing", &dir))?;
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.map_err(NetError::io("listing", &dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) || !name.ends_with(".json") {
                continue;
            }
            if let Some(net) = fsutil::read_json::<Network>(&entry.path())? {
                nets.push(net);
            }
        }
        nets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nets)
    }

    fn find(&self, name_or_id: &str) -> Result<Option<Network>, NetError> {
        let nets = self.load_all()?;
        if let Some(n) = nets
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(Some(n.clone()));
        }
        let prefixed: Vec<&Network> = nets
            .iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match prefixed.len() {
            0 => Ok(None),
            1 => Ok(Some(prefixed[0].clone())),
            n => Err(NetError::Ambiguous(name_or_id.to_string(), n)),
        }
    }

    /// The default network `bridge` (docker's name; no DNS by name on it,
    /// like docker's default bridge), created on first use.
    pub fn default_network(&self) -> Result<Network, NetError> {
        if let Some(n) = self.find(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let _lock = self.lock()?;
        if let Some(n) = self.find(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let opts = CreateOptions {
            dns: false,
            ..CreateOptions::default()
        };
        self.create_locked(DEFAULT_NETWORK, &opts)
    }

    /// `docker network create NAME`. The subnet is `opts.subnet` or the first
    /// free one of the pools; it must not overlap another network (of any
    /// store on the host) or the host's routes, addresses and nameservers.
    pub fn create(&self, name: &str, opts: &CreateOptions) -> Result<Network, NetError> {
        check_name(name)?;
        if PREDEFINED.contains(&name) {
            return Err(NetError::Exists(name.to_string()));
        }
        let _lock = self.lock()?;
        self.create_locked(name, opts)
    }

    fn create_locked(&self, name: &str, opts: &CreateOptions) -> Result<Network, NetError> {
        let existing = self.load_all()?;
        if existing.iter().any(|n| n.name == name) {
            return Err(NetError::Exists(name.to_string()));
        }
        let wanted: Option<Ipv4Net> = match &opts.subnet {
            Some(text) => {
                let net: Ipv4Net = text.parse()?;
                if net.prefix_len() > 30 {
                    return Err(NetError::InvalidSubnet {
                        subnet: text.clone(),
                        reason: "smaller than a /30: no room for a gateway and a container".into(),
                    });
                }
                Some(net)
            }
            None => None,
        };
        if let (Some(net), Some(gw)) = (wanted, opts.gateway) {
            if !net.is_host(gw) {
                return Err(NetError::InvalidGateway {
                    network: name.to_string(),
                    subnet: net.to_string(),
                    gateway: gw.to_string(),
                    reason: "it is not a host address of the subnet",
                });
            }
        }
        if wanted.is_none() && opts.gateway.is_some() {
            return Err(NetError::InvalidGateway {
                network: name.to_string(),
                subnet: "(none)".into(),
                gateway: host_text(opts.gateway.map(IpAddr::V4)),
                reason: "a gateway needs an explicit subnet",
            });
        }
        // A claim can be lost to another store between looking and claiming: look again.
        for _ in 0..16 {
            let mut taken: Vec<Taken> = existing
                .iter()
                .filter_map(|n| {
                    n.subnet.map(|s| Taken {
                        net: s,
                        what: format!("network {} ({s})", n.name),
                    })
                })
                .collect();
            taken.extend(self.claims.others(&self.cfg.state_dir)?);
            taken.extend(subnet::host_taken(Path::new(
                super::files::HOST_RESOLV_CONF,
            ))?);
            let subnet = match wanted {
                Some(net) => {
                    if let Some(t) = subnet::first_overlap(&net, &taken) {
                        return Err(NetError::SubnetOverlap {
                            network: name.to_string(),
                            subnet: net.to_string(),
                            other: t.what.clone(),
                        });
                    }
                    net
                }
                None => subnet::pick(&POOLS, &taken).ok_or_else(|| NetError::NoSubnet {
                    network: name.to_string(),
                    pools: subnet::pools_text(&POOLS),
                })?,
            };
            let gateway = match opts.gateway {
                // Checked above against the explicit subnet it needs.
                Some(gw) => gw,
                None => subnet.first_host().ok_or_else(|| NetError::InvalidSubnet {
                    subnet: subnet.to_string(),
                    reason: "no room for a gateway".into(),
                })?,
            };
            let (id, bridge) = self.new_id(&existing)?;
            let net = Network {
                id,
                name: name.to_string(),
                driver: Driver::Bridge,
                subnet: Some(subnet),
                gateway: Some(gateway),
                bridge: Some(bridge),
                internal: opts.internal,
                dns: opts.dns,
                labels: opts.labels.clone(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            };
            // The network file first, then the claim (claims.rs says why).
            let file = network_file(&self.cfg.state_dir, &net.id);
            fsutil::write_json(&file, &net)?;
            if self.claims.claim(&subnet, &self.cfg.state_dir, &net.id)? {
                return Ok(net);
            }
            fsutil::remove_file(&file)?;
            if wanted.is_some() {
                return Err(NetError::SubnetOverlap {
                    network: name.to_string(),
                    subnet: subnet.to_string(),
                    other: "a network another store created at the same time".into(),
                });
            }
        }
        Err(NetError::NoSubnet {
            network: name.to_string(),
            pools: subnet::pools_text(&POOLS),
        })
    }

    /// A new id whose bridge name is free on the host and in the store.
    fn new_id(&self, existing: &[Network]) -> Result<(String, String), NetError> {
        loop {
            let id = fsutil::random_hex()?;
            let bridge = format!("sk-{}", &id[..12]);
            let clash = existing
                .iter()
                .any(|n| n.bridge.as_deref() == Some(&bridge))
                || Path::new("/sys/class/net").join(&bridge).exists();
            if !clash {
                return Ok((id, bridge));
            }
        }
    }

    /// A network by name, id, or unique prefix of its id. `bridge` is made
    /// on first use; `host` and `none` are the pre-defined non-bridge ones.
    pub fn get(&self, name_or_id: &str) -> Result<Network, NetError> {
        match name_or_id {
            "host" => return Ok(Network::predefined("host", Driver::Host)),
            "none" => return Ok(Network::predefined("none", Driver::Null)),
            DEFAULT_NETWORK => return self.default_network(),
            _ => {}
        }
        if let Some(n) = self.find(name_or_id)? {
            return Ok(n);
        }
        for pre in ["host", "none"] {
            let p = self.get(pre)?;
            if p.id == name_or_id || (name_or_id.len() >= 3 && p.id.starts_with(name_or_id)) {
                return Ok(p);
            }
        }
        Err(NetError::NotFound(name_or_id.to_string()))
    }

    /// Every network, `bridge`, `host` and `none` included, by name.
    pub fn list(&self) -> Result<Vec<Network>, NetError> {
        self.default_network()?;
        let mut nets = self.load_all()?;
        nets.push(Network::predefined("host", Driver::Host));
        nets.push(Network::predefined("none", Driver::Null));
        nets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nets)
    }

    /// `docker network rm`: refuses while a container is attached and for
    /// the pre-defined networks.
    pub fn remove(&self, name_or_id: &str) -> Result<(), NetError> {
        let net = self.get(name_or_id)?;
        if PREDEFINED.contains(&net.name.as_str()) {
            return Err(NetError::Predefined {
                name: net.name,
                action: "cannot be removed",
            });
        }
        let _lock = self.lock()?;
        let attached = self
            .records()?
            .iter()
            .any(|(_, r)| r.interfaces().any(|i| i.network_id == net.id));
        if attached || !ipam::holders(&self.cfg.state_dir, &net.id)?.is_empty() {
            return Err(NetError::InUse {
                name: net.name,
                id: net.id,
            });
        }
        if let Some(subnet) = net.subnet {
            self.claims.release(&subnet, &self.cfg.state_dir, &net.id)?;
        }
        fsutil::remove_file(&ipam::path(&self.cfg.state_dir, &net.id))?;
        fsutil::remove_file(&network_file(&self.cfg.state_dir, &net.id))?;
        // netavark deletes the bridge with its last container; one left by a
        // crash (no ports) goes now.
        if let Some(bridge) = &net.bridge {
            super::attach::remove_idle_bridge(bridge)?;
        }
        Ok(())
    }

    /// Attachment records of the store, by container id.
    pub(crate) fn records(&self) -> Result<Vec<(String, Record)>, NetError> {
        let dir = self.cfg.state_dir.join("attachments");
        let entries = fs::read_dir(&dir).map_err(NetError::io("listing", &dir))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(NetError::io("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if let Some(r) = fsutil::read_json::<Record>(&entry.path())? {
                out.push((id.to_string(), r));
            }
        }
        Ok(out)
    }

    /// Fails with "port is already allocated" if a host port of `ports` is
    /// published by a live attachment of this store, forwarded by another
    /// netavark (another store, podman), or bound by a host process (a bind
    /// test). Host port 0 (pick one) never conflicts.
    pub fn check_ports_free(&self, ports: &[PortMapping]) -> Result<(), NetError> {
        let _lock = self.lock()?;
        self.check_ports_locked(ports)
    }

    pub(crate) fn check_ports_locked(&self, ports: &[PortMapping]) -> Result<(), NetError> {
        let allocated = |m: &PortMapping, by: String| NetError::PortAllocated {
            host: host_text(m.host_ip),
            port: m.host_port,
            protocol: m.protocol,
            by,
        };
        for (i, m) in ports.iter().enumerate() {
            if ports[..i].iter().any(|o| o.conflicts(m)) {
                return Err(allocated(m, "published twice in the same request".into()));
            }
        }
        let fixed: Vec<&PortMapping> = ports.iter().filter(|m| m.host_port != 0).collect();
        if fixed.is_empty() {
            return Ok(());
        }
        for (container, record) in self.records()? {
            for seg in &record.segments {
                for theirs in &seg.ports {
                    if let Some(m) = fixed.iter().find(|m| m.conflicts(theirs)) {
                        let by = format!("container {} ({container})", seg.container_name);
                        return Err(allocated(m, by));
                    }
                }
            }
        }
        let forwards = self.iptables.forwards()?;
        for m in &fixed {
            let hit = forwards.iter().find(|f| {
                f.protocol == m.protocol
                    && (f.first..=f.last).contains(&m.host_port)
                    && (f.host_ip.is_none()
                        || m.host_ip.is_none_or(|ip| ip.is_unspecified())
                        || f.host_ip == m.host_ip)
            });
            if let Some(f) = hit {
                let by = format!(
                    "a netavark port forward on the host (iptables nat chain {})",
                    f.chain
                );
                return Err(allocated(m, by));
            }
        }
        for m in &fixed {
            match ports::bind_test(m) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(allocated(m, format!("a host process has it bound: {e}")))
                }
                Err(e) => {
                    return Err(NetError::Io {
                        what: "binding the host side of published port",
                        path: PathBuf::from(format!(
                            "{}:{}/{}",
                            host_text(m.host_ip),
                            m.host_port,
                            m.protocol
                        )),
                        source: e,
                    })
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["front", "a", "my_net.1-x", "9lives"] {
            check_name(ok).expect(ok);
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn predefined_ids_are_stable_hex() {
        let a = Network::predefined("host", Driver::Host);
        let b = Network::predefined("host", Driver::Host);
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, Network::predefined("none", Driver::Null).id);
        assert!(!a.is_bridge());
    }
}
