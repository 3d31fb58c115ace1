//! Attaching a container's network namespace to networks (`connect`) and
//! detaching it (`disconnect`), with the store's record of what is attached.
//!
//! `STATE_DIR/attachments/<container id>.json` holds the container's
//! attachments ("segments", one per `connect`): their interfaces, addresses
//! and published ports. It is written before netavark runs, so a crash
//! during setup leaves a record that `disconnect` cleans up.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::error::{host_text, NetError};
use super::firewall::failure_text;
use super::fsutil;
use super::ipam;
use super::netavark::{Member, Netavark, Options};
use super::netns::{self, Netns};
use super::ports::{self, PortMapping};
use super::store::{Network, Networks};

/// One network of an attach request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkRequest {
    /// Name, id or id prefix.
    pub network: String,
    /// DNS names besides the container's name (and its short id).
    pub aliases: Vec<String>,
    pub static_ip: Option<Ipv4Addr>,
}

/// What `connect` sets up: the container's namespace (`netns`, e.g. a
/// [`Netns`]) on `networks` (interfaces eth0, eth1, … in this order, after
/// those it has), with `ports` published: netavark forwards each to the
/// container's address on every network of the request, and the rule of the
/// first network matches first.
#[derive(Clone, Debug, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    pub netns: PathBuf,
    pub networks: Vec<NetworkRequest>,
    pub ports: Vec<PortMapping>,
}

/// A container's interface on one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The network's name (at connect time) and id.
    pub network: String,
    pub network_id: String,
    /// Inside the container: eth0, eth1, …
    pub interface_name: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub aliases: Vec<String>,
    /// The host's bridge interface.
    pub bridge: String,
}

/// What one `connect` set up; the engine keeps it in its container record
/// and hands it back to `disconnect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    #[serde(default)]
    pub container_name: String,
    pub interfaces: Vec<Interface>,
    /// With the host ports actually used (0 resolved to the picked port).
    pub ports: Vec<PortMapping>,
    /// Nameservers for resolv.conf: the gateways of networks with DNS.
    pub dns_servers: Vec<IpAddr>,
    pub dns_search: Vec<String>,
}

/// The store's record of a container: its attachments.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    pub segments: Vec<Attachment>,
}

impl Record {
    pub(crate) fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.segments.iter().flat_map(|s| s.interfaces.iter())
    }
}

fn record_path(state_dir: &Path, container_id: &str) -> PathBuf {
    state_dir
        .join("attachments")
        .join(format!("{container_id}.json"))
}

fn check_container_id(id: &str) -> Result<(), NetError> {
    let bad = |reason| NetError::InvalidContainerId {
        id: id.to_string(),
        reason,
    };
    if id.is_empty() || id.starts_with('.') {
        return Err(bad("empty or starting with a dot"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(bad("only letters, digits and _.- are allowed"));
    }
    Ok(())
}

impl Networks {
    fn load_record(&self, container_id: &str) -> Result<Record, NetError> {
        Ok(fsutil::read_json(&record_path(&self.cfg.state_dir, container_id))?.unwrap_or_default())
    }

    fn save_record(&self, container_id: &str, record: &Record) -> Result<(), NetError> {
        let path = record_path(&self.cfg.state_dir, container_id);
        if record.segments.is_empty() {
            fsutil::remove_file(&path)
        } else {
            fsutil::write_json(&path, record)
        }
    }

    /// What the store has attached for `container_id`, one [`Attachment`] per
    /// `connect` (for an engine that lost its own copy, e.g. after a crash).
    pub fn attachments(&self, container_id: &str) -> Result<Vec<Attachment>, NetError> {
        check_container_id(container_id)?;
        Ok(self.load_record(container_id)?.segments)
    }

    /// Attach: allocate IPs, then netavark setup in `req.netns`. Ports are
    /// checked first ("port is already allocated" before anything is made).
    /// Rolls back (teardown + release IPs) on failure.
    pub fn connect(&self, req: &AttachRequest) -> Result<Attachment, NetError> {
        check_container_id(&req.container_id)?;
        let invalid = |reason: String| NetError::InvalidRequest {
            container: req.container_id.clone(),
            reason,
        };
        if req.networks.is_empty() {
            return Err(invalid("no network given".into()));
        }
        if !netns::is_netns(&req.netns) {
            return Err(invalid(format!(
                "{} is not a network namespace",
                req.netns.display()
            )));
        }
        if let Some(p) = req
            .ports
            .iter()
            .find(|p| matches!(p.host_ip, Some(IpAddr::V6(_))))
        {
            return Err(invalid(format!(
                "cannot publish {p}: networks are IPv4 only, give an IPv4 host address"
            )));
        }
        let mut nets: Vec<Network> = Vec::new();
        for r in &req.networks {
            let net = self.get(&r.network)?;
            if !net.is_bridge() {
                return Err(NetError::Predefined {
                    name: net.name,
                    action: "is not attached through netavark (host: use the host's namespace; none: an empty namespace)",
                });
            }
            if nets.iter().any(|n| n.id == net.id) {
                return Err(invalid(format!("network {} is given twice", net.name)));
            }
            nets.push(net);
        }
        let name = if req.container_name.is_empty() {
            req.container_id[..req.container_id.len().min(12)].to_string()
        } else {
            req.container_name.clone()
        };

        let _lock = self.lock()?;
        let mut record = self.load_record(&req.container_id)?;
        for net in &nets {
            if record.interfaces().any(|i| i.network_id == net.id) {
                return Err(NetError::AlreadyAttached {
                    container: req.container_id.clone(),
                    network: net.name.clone(),
                });
            }
        }
        let ports = self.resolve_ports(&req.ports)?;
        let names = self.interface_names(&req.netns, &record, nets.len())?;

        let mut interfaces: Vec<Interface> = Vec::new();
        for ((net, r), ifname) in nets.iter().zip(&req.networks).zip(names) {
            let (Some(subnet), Some(gateway), Some(bridge)) =
                (net.subnet, net.gateway, &net.bridge)
            else {
                let e = invalid(format!("network {} has no subnet or bridge", net.name));
                return Err(with_rollback(
                    e,
                    self.release_ips(&req.container_id, &interfaces),
                ));
            };
            let pool = ipam::Pool {
                network_id: &net.id,
                network_name: &net.name,
                subnet,
                gateway,
            };
            match ipam::allocate(&self.cfg.state_dir, &pool, &req.container_id, r.static_ip) {
                Ok(ip) => interfaces.push(Interface {
                    network: net.name.clone(),
                    network_id: net.id.clone(),
                    interface_name: ifname,
                    ip,
                    prefix_len: subnet.prefix_len(),
                    gateway,
                    mac: String::new(),
                    aliases: r.aliases.clone(),
                    bridge: bridge.clone(),
                }),
                Err(e) => {
                    let released = self.release_ips(&req.container_id, &interfaces);
                    return Err(with_rollback(e, released));
                }
            }
        }
        let mut att = Attachment {
            container_id: req.container_id.clone(),
            container_name: name,
            interfaces,
            ports,
            dns_servers: Vec::new(),
            dns_search: Vec::new(),
        };
        record.segments.push(att.clone());
        if let Err(e) = self.save_record(&req.container_id, &record) {
            let released = self.release_ips(&req.container_id, &att.interfaces);
            return Err(with_rollback(e, released));
        }

        let short_id = &req.container_id[..req.container_id.len().min(12)];
        let result = self.setup(&att, &nets, short_id, &req.netns);
        match result {
            Ok(filled) => att = filled,
            Err(e) => {
                let mut undo = Vec::new();
                let torn = self
                    .host_lock()
                    .and_then(|_host| self.teardown(&att, &att.interfaces, &att.ports, &req.netns));
                if let Err(t) = torn {
                    undo.push(t);
                }
                if let Err(r) = self.release_ips(&req.container_id, &att.interfaces) {
                    undo.push(r);
                }
                record.segments.pop();
                if let Err(s) = self.save_record(&req.container_id, &record) {
                    undo.push(s);
                }
                return Err(with_rollback(e, NetError::collect(undo)));
            }
        }
        if let Some(last) = record.segments.last_mut() {
            *last = att.clone();
        }
        self.save_record(&req.container_id, &record)?;
        Ok(att)
    }

    /// netavark setup of a pending attachment, then hairpin mode on its bridges.
    fn setup(
        &self,
        att: &Attachment,
        nets: &[Network],
        short_id: &str,
        netns: &Path,
    ) -> Result<Attachment, NetError> {
        // netavark's DNS names: the aliases and the short id (as docker answers
        // for it); it adds the container's name itself.
        let dns_names: Vec<Vec<String>> = att
            .interfaces
            .iter()
            .map(|i| {
                let mut names = i.aliases.clone();
                if short_id != att.container_name && !names.iter().any(|n| n == short_id) {
                    names.push(short_id.to_string());
                }
                names
            })
            .collect();
        let members: Vec<Member<'_>> = att
            .interfaces
            .iter()
            .zip(nets)
            .zip(&dns_names)
            .map(|((iface, net), names)| Member {
                network: net,
                interface_name: &iface.interface_name,
                ip: iface.ip,
                aliases: names,
            })
            .collect();
        let opts = Options::new(&att.container_id, &att.container_name, &members, &att.ports)?;
        let status = {
            let _host = self.host_lock()?;
            let status = Netavark::new(&self.cfg).setup(netns, &opts)?;
            // Our jump to the isolation rules, before anyone's teardown can
            // delete netavark's (firewall.rs says why).
            self.iptables.keep_isolation()?;
            status
        };
        let mut filled = att.clone();
        for iface in &mut filled.interfaces {
            let Some(s) = status.get(&iface.network_id) else {
                continue;
            };
            if let Some(found) = s
                .interfaces
                .as_ref()
                .and_then(|m| m.get(&iface.interface_name))
            {
                iface.mac = found.mac_address.clone();
                let gw = found
                    .subnets
                    .iter()
                    .flatten()
                    .find_map(|a| match a.gateway {
                        Some(IpAddr::V4(v4)) if a.ipnet.starts_with(&format!("{}/", iface.ip)) => {
                            Some(v4)
                        }
                        _ => None,
                    });
                if let Some(gw) = gw {
                    iface.gateway = gw;
                }
            }
            for ip in s.dns_server_ips.iter().flatten() {
                if !filled.dns_servers.contains(ip) {
                    filled.dns_servers.push(*ip);
                }
            }
            for d in s.dns_search_domains.iter().flatten() {
                if !filled.dns_search.contains(d) {
                    filled.dns_search.push(d.clone());
                }
            }
        }
        let bridges: BTreeSet<&str> = filled
            .interfaces
            .iter()
            .map(|i| i.bridge.as_str())
            .collect();
        for bridge in bridges {
            super::hairpin::enable(bridge)?;
        }
        Ok(filled)
    }

    /// netavark teardown + release IPs; reports every failure (does not stop
    /// at the first). Interfaces of `att` that the store does not know (a
    /// second disconnect) are skipped. If `netns` is gone (the namespace was
    /// removed first, or after a reboot), a stand-in namespace lets netavark
    /// remove the host side (bridge, firewall, DNS entries) anyway.
    pub fn disconnect(&self, att: &Attachment, netns: &Path) -> Result<(), NetError> {
        check_container_id(&att.container_id)?;
        let _lock = self.lock()?;
        let mut record = self.load_record(&att.container_id)?;
        let wanted = |i: &Interface| {
            att.interfaces
                .iter()
                .any(|a| a.network_id == i.network_id && a.interface_name == i.interface_name)
        };
        let mut targets: Vec<Interface> = Vec::new();
        let mut ports: Vec<PortMapping> = Vec::new();
        let mut name = att.container_name.clone();
        for seg in &record.segments {
            let mine: Vec<&Interface> = seg.interfaces.iter().filter(|i| wanted(i)).collect();
            if !mine.is_empty() {
                targets.extend(mine.into_iter().cloned());
                ports.extend(seg.ports.iter().copied());
                name = seg.container_name.clone();
            }
        }
        if targets.is_empty() {
            return Ok(());
        }
        let mut errors = Vec::new();
        let subject = Attachment {
            container_name: name,
            ..att.clone()
        };
        // One hold of the host lock for teardown and pruning, so no one sees
        // netavark's shared chains idle in between.
        let host = match self.host_lock() {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if let Err(e) = self.teardown(&subject, &targets, &ports, netns) {
            errors.push(e);
        }
        if let Err(e) = self.release_ips(&att.container_id, &targets) {
            errors.push(e);
        }
        for seg in &mut record.segments {
            seg.interfaces.retain(|i| !wanted(i));
        }
        record.segments.retain(|s| !s.interfaces.is_empty());
        if let Err(e) = self.save_record(&att.container_id, &record) {
            errors.push(e);
        }
        if host.is_some() {
            if let Err(e) = self.iptables.prune_netavark_chains() {
                errors.push(e);
            }
        }
        drop(host);
        NetError::collect(errors)
    }

    /// netavark teardown of `ifaces` (with `ports`) in `netns`, or in a
    /// stand-in namespace when it is gone. Interfaces missing in the
    /// namespace get a stand-in veth, since netavark 1.4 stops before the host
    /// side when it cannot delete one. Then our jump to the isolation rules is
    /// set right (`firewall.rs`). The caller holds the host lock.
    fn teardown(
        &self,
        att: &Attachment,
        ifaces: &[Interface],
        ports: &[PortMapping],
        netns: &Path,
    ) -> Result<(), NetError> {
        let mut nets: Vec<Network> = Vec::new();
        for iface in ifaces {
            nets.push(self.get(&iface.network_id).map_err(|_| {
                NetError::NotFound(format!(
                    "{} ({}), which container {} is attached to",
                    iface.network, iface.network_id, att.container_id
                ))
            })?);
        }
        let members: Vec<Member<'_>> = ifaces
            .iter()
            .zip(&nets)
            .map(|(iface, net)| Member {
                network: net,
                interface_name: &iface.interface_name,
                ip: iface.ip,
                aliases: &[],
            })
            .collect();
        let opts = Options::new(&att.container_id, &att.container_name, &members, ports)?;
        let stand_in = if netns::is_netns(netns) {
            None
        } else {
            let id = format!(".teardown-{}", att.container_id);
            if let Some(old) = Netns::open(&self.cfg.run_dir, &id) {
                old.remove()?;
            }
            Some(Netns::create(&self.cfg.run_dir, &id)?)
        };
        let path = stand_in.as_ref().map_or(netns, |n| n.path.as_path());
        let names: Vec<&str> = ifaces.iter().map(|i| i.interface_name.as_str()).collect();
        let mut bridges: Vec<&str> = ifaces.iter().map(|i| i.bridge.as_str()).collect();
        bridges.dedup();
        let mut made_bridges = Vec::new();
        let result = add_stand_in_veths(path, &names)
            .and_then(|()| add_stand_in_bridges(&bridges, &mut made_bridges))
            .and_then(|()| Netavark::new(&self.cfg).teardown(path, &opts));
        let result = match result {
            Err(NetError::Netavark { ref message, .. }) if only_absent(message) => Ok(()),
            other => other,
        };
        let mut errors: Vec<NetError> = result.err().into_iter().collect();
        // netavark 1.4 deletes its jump to the isolation rules with a
        // network's last container, whoever else needs it: keep ours there.
        if let Err(e) = self.iptables.keep_isolation() {
            errors.push(e);
        }
        // netavark removes a bridge with its last port; a stand-in it left goes here.
        for bridge in made_bridges {
            if let Err(e) = remove_idle_bridge(&bridge) {
                errors.push(e);
            }
        }
        if let Some(ns) = stand_in {
            if let Err(e) = ns.remove() {
                errors.push(e);
            }
        }
        NetError::collect(errors)
    }

    fn release_ips(&self, container: &str, ifaces: &[Interface]) -> Result<(), NetError> {
        let mut errors = Vec::new();
        for iface in ifaces {
            if let Err(e) =
                ipam::release(&self.cfg.state_dir, &iface.network_id, container, iface.ip)
            {
                errors.push(e);
            }
        }
        NetError::collect(errors)
    }

    /// Checks the requested ports and replaces host port 0 with a free port.
    fn resolve_ports(&self, requested: &[PortMapping]) -> Result<Vec<PortMapping>, NetError> {
        self.check_ports_locked(requested)?;
        let fixed: Vec<PortMapping> = requested
            .iter()
            .filter(|p| p.host_port != 0)
            .copied()
            .collect();
        let mut out: Vec<PortMapping> = Vec::with_capacity(requested.len());
        for p in requested {
            let resolved = if p.host_port != 0 {
                *p
            } else {
                self.pick_port(p, &fixed, &out)?
            };
            out.push(resolved);
        }
        Ok(out)
    }

    /// A free host port for `p` that none of `fixed` and `chosen` uses.
    fn pick_port(
        &self,
        p: &PortMapping,
        fixed: &[PortMapping],
        chosen: &[PortMapping],
    ) -> Result<PortMapping, NetError> {
        let mut last_error = None;
        for _ in 0..32 {
            let port = ports::ephemeral_port(p.protocol, p.host_ip).map_err(|e| NetError::Io {
                what: "picking a free host port for",
                path: PathBuf::from(p.to_string()),
                source: e,
            })?;
            let candidate = PortMapping {
                host_port: port,
                ..*p
            };
            if fixed.iter().chain(chosen).any(|o| o.conflicts(&candidate)) {
                continue;
            }
            match self.check_ports_locked(std::slice::from_ref(&candidate)) {
                Ok(()) => return Ok(candidate),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(NetError::PortAllocated {
            host: host_text(p.host_ip),
            port: 0,
            protocol: p.protocol,
            by: "no free ephemeral port found in 32 tries".into(),
        }))
    }

    /// Interface names for `count` new interfaces: eth0, eth1, … skipping
    /// names the container has on our networks or in its namespace.
    fn interface_names(
        &self,
        netns: &Path,
        record: &Record,
        count: usize,
    ) -> Result<Vec<String>, NetError> {
        let taken: Vec<String> = record
            .interfaces()
            .map(|i| i.interface_name.clone())
            .collect();
        netns::run_in(netns, || {
            let mut names = Vec::with_capacity(count);
            let mut n = 0usize;
            while names.len() < count {
                let name = format!("eth{n}");
                if !taken.contains(&name) && !netns::has_interface(&name) {
                    names.push(name);
                }
                n += 1;
            }
            names
        })
    }
}

/// What netavark 1.4's teardown says when something it removes is not
/// there: the aardvark-dns entry (setup failed before writing it, or it was
/// torn down before), an iptables chain or rule (setup failed before making
/// it). The host is then as teardown wants it, so these are not failures.
const ABSENT: [&str; 3] = [
    "IO error: No such file or directory (os error 2)",
    "No chain/target/match by that name",
    "does a matching rule exist in that chain",
];

/// Whether every error netavark listed (it joins several as
/// "netavark encountered multiple errors:" and tab-dash lines) is an ABSENT one.
fn only_absent(message: &str) -> bool {
    let items: Vec<&str> = match message.split_once("multiple errors:") {
        Some((_, list)) => list
            .lines()
            .map(|l| l.trim().trim_start_matches("- ").trim())
            .filter(|l| !l.is_empty())
            .collect(),
        None => vec![message.trim()],
    };
    !items.is_empty()
        && items
            .iter()
            .all(|item| ABSENT.iter().any(|a| item.contains(a)))
}

/// The setup error, with the rollback's errors if any.
fn with_rollback(error: NetError, rollback: Result<(), NetError>) -> NetError {
    match rollback {
        Ok(()) => error,
        Err(r) => NetError::RolledBack {
            error: Box::new(error),
            rollback: Box::new(r),
        },
    }
}

/// The `ip` program (iproute2).
fn ip_program() -> Result<PathBuf, NetError> {
    let dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    dirs.iter()
        .map(|d| Path::new(d).join("ip"))
        .find(|p| p.is_file())
        .ok_or_else(|| NetError::MissingBinary {
            what: "ip (iproute2)",
            looked: dirs.join(", "),
        })
}

fn run_ip(args: &[&str]) -> Result<(), NetError> {
    let ip = ip_program()?;
    let out = Command::new(&ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetError::Command {
            program: ip.display().to_string(),
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Command {
            program: ip.display().to_string(),
            args: args.join(" "),
            message: failure_text(&out.stderr, out.status),
        })
    }
}

/// In the namespace at `path`, a veth for each of `names` it lacks.
fn add_stand_in_veths(path: &Path, names: &[&str]) -> Result<(), NetError> {
    netns::run_in(path, || {
        for (i, name) in names.iter().enumerate() {
            if !netns::has_interface(name) {
                // `ip` started from this thread runs in the namespace.
                let peer = format!("skstandin{i}");
                run_ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])?;
            }
        }
        Ok(())
    })?
}

/// An empty bridge for each of `bridges` missing on the host (listed in
/// `made`): netavark 1.4's teardown stops at a missing bridge, before the
/// network's firewall rules. A bridge is missing after a reboot (the rules
/// too, which teardown then reports as absent) or when someone deleted it.
fn add_stand_in_bridges(bridges: &[&str], made: &mut Vec<String>) -> Result<(), NetError> {
    for bridge in bridges {
        if !Path::new("/sys/class/net").join(bridge).exists() {
            run_ip(&["link", "add", bridge, "type", "bridge"])?;
            made.push(bridge.to_string());
        }
    }
    Ok(())
}

/// Deletes `bridge` if it exists and has no ports (a leftover).
pub(crate) fn remove_idle_bridge(bridge: &str) -> Result<(), NetError> {
    let brif = Path::new("/sys/class/net").join(bridge).join("brif");
    let Ok(mut ports) = std::fs::read_dir(&brif) else {
        return Ok(());
    };
    if ports.next().is_some() {
        return Ok(());
    }
    run_ip(&["link", "delete", bridge, "type", "bridge"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_errors() {
        assert!(only_absent(
            "IO error: No such file or directory (os error 2)"
        ));
        assert!(only_absent(
            "netavark encountered multiple errors:\n\t- IO error: No such file or directory (os error 2)\n\t- code: 1, msg: iptables: No chain/target/match by that name.\n"
        ));
        assert!(!only_absent(
            "netavark encountered multiple errors:\n\t- IO error: No such file or directory (os error 2)\n\t- failed to delete bridge sk-1: Netlink error: Device or resource busy (os error 16)"
        ));
        assert!(!only_absent(
            "failed to delete container veth eth0: Netlink error: No such device (os error 19)"
        ));
        assert!(!only_absent(""));
    }
}
