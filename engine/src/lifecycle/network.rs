//! The container's network at start: a namespace of its own wired to its
//! networks by netavark (published ports included), or the host's, or none;
//! and the /etc/hosts, /etc/resolv.conf and /etc/hostname it sees.

use std::net::IpAddr;

use anyhow::{Context, Result};
use skiff_specs::net::{AttachRequest, Attachment, NetConfig, Netns, NetworkRequest, Networks};

use crate::container::record::Container;
use crate::container::ContainerDir;
use crate::engine::Engine;
use crate::ids;
use crate::spec::NetNs;

/// The engine's networks.
pub fn networks(engine: &Engine) -> Result<Networks> {
    let cfg = NetConfig::discover(engine.layout.networks(), engine.layout.run().to_path_buf())
        .context("container networking (netavark, aardvark-dns, iptables)")?;
    Ok(Networks::open(cfg)?)
}

/// Sets up the container's network; the record's `active` notes what was made.
pub fn connect(engine: &Engine, c: &mut Container, _dir: &ContainerDir) -> Result<NetNs> {
    match c.host.network_mode.as_str() {
        "host" => return Ok(NetNs::Host),
        "none" => return Ok(NetNs::Isolated),
        _ => {}
    }
    let nets = networks(engine)?;
    let mut requests = Vec::new();
    let mut endpoints = c.host.networks.clone();
    if endpoints.is_empty() {
        endpoints.push(crate::container::record::NetworkEndpoint {
            network: c.host.network_mode.clone(),
            ..Default::default()
        });
    }
    for e in &endpoints {
        let net = if e.network == "bridge" {
            nets.default_network()?
        } else {
            nets.get(&e.network)?
        };
        let mut aliases = e.aliases.clone();
        // docker answers a container's short id on user networks too.
        aliases.push(ids::short(&c.id).to_owned());
        let static_ip = e
            .ipv4_address
            .as_deref()
            .map(|ip| {
                ip.parse()
                    .with_context(|| format!("invalid --ip value {ip:?}"))
            })
            .transpose()?;
        requests.push(NetworkRequest {
            network: net.name.clone(),
            aliases,
            static_ip,
        });
    }
    let ports = super::resolve_ports(c)?;
    if let Err(e) = nets.check_ports_free(&ports) {
        if !e.is_port_allocated() {
            return Err(e.into());
        }
        // A container that stopped (or was removed with --rm) a moment ago
        // may still hold the port until its cleanup finishes: finish it.
        release_stopped(engine, &c.id);
        nets.check_ports_free(&ports)?;
    }
    let ns = Netns::create(engine.layout.run(), &c.id)?;
    c.active.netns = Some(ns.path.clone());
    let req = AttachRequest {
        container_id: c.id.clone(),
        container_name: c.name.clone(),
        netns: ns.path.clone(),
        networks: requests,
        ports,
    };
    let att = match nets.connect(&req) {
        Ok(a) => a,
        Err(e) => {
            let _ = ns.remove();
            c.active.netns = None;
            return Err(e.into());
        }
    };
    c.active.network = Some(serde_json::to_value(&att)?);
    Ok(NetNs::Path(req.netns))
}

/// Finishes the network teardown of every stopped container but `except`
/// (their cleanups may be running behind) and of pending removals.
fn release_stopped(engine: &Engine, except: &str) {
    if let Err(e) = super::finish_pending(engine) {
        tracing::warn!("{e:#}");
    }
    for other in engine.containers.list().unwrap_or_default() {
        if other.id == except || other.active.network.is_none() {
            continue;
        }
        let Ok(_lock) = crate::lock::container(&engine.layout.locks(), &other.id) else {
            continue;
        };
        if let Ok(mut o) = engine.containers.load(&other.id) {
            if let Err(e) = super::teardown(engine, &mut o) {
                tracing::warn!("{e:#}");
            }
        }
    }
}

/// The attachment recorded at start, if any.
pub fn attachment(c: &Container) -> Option<Attachment> {
    c.active
        .network
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Writes hostname, hosts and resolv.conf for the container.
pub fn write_files(engine: &Engine, c: &Container, dir: &ContainerDir) -> Result<()> {
    let att = attachment(c);
    std::fs::write(dir.hostname(), format!("{}\n", c.config.hostname))?;
    let extra: Vec<(String, IpAddr)> = c
        .host
        .extra_hosts
        .iter()
        .filter_map(|h| {
            let (name, ip) = h.split_once(':')?;
            Some((name.to_owned(), ip.parse().ok()?))
        })
        .collect();
    if c.host.network_mode == "host" {
        // The host's own files, as docker does with --network host.
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let mut text = hosts;
        for (n, ip) in &extra {
            text.push_str(&format!("{ip}\t{n}\n"));
        }
        std::fs::write(dir.hosts(), text)?;
    } else {
        let names = skiff_specs::net::hosts_file(&c.config.hostname, att.as_ref(), &extra);
        std::fs::write(dir.hosts(), names)?;
    }
    let dns: Vec<IpAddr> = c
        .host
        .dns
        .iter()
        .map(|d| {
            d.parse()
                .with_context(|| format!("invalid --dns value {d:?}"))
        })
        .collect::<Result<_>>()?;
    let nets = match &att {
        Some(a) => {
            let store = networks(engine)?;
            a.interfaces
                .iter()
                .filter_map(|i| store.get(&i.network).ok())
                .collect()
        }
        None => Vec::new(),
    };
    let resolv = skiff_specs::net::resolv_conf(att.as_ref(), &nets, &dns, &c.host.dns_search)?;
    std::fs::write(dir.resolv_conf(), resolv)?;
    Ok(())
}

/// Tears the network down: netavark teardown, addresses released, the
/// namespace removed. Every failure is reported, none stops the rest.
pub fn disconnect(engine: &Engine, c: &mut Container) -> Vec<String> {
    let mut errors = Vec::new();
    let ns_file = Netns::open(engine.layout.run(), &c.id);
    // What the record says was set up; a skiffctl killed between connect and
    // saving the record leaves only the network store's own copy.
    let mut atts: Vec<Attachment> = attachment(c).into_iter().collect();
    let has_netns = ns_file.is_some() || c.active.netns.is_some();
    if atts.is_empty() && has_netns {
        if let Ok(nets) = networks(engine) {
            atts = nets.attachments(&c.id).unwrap_or_default();
        }
    }
    let netns = c
        .active
        .netns
        .clone()
        .or_else(|| ns_file.as_ref().map(|n| n.path.clone()));
    if let (false, Some(ns)) = (atts.is_empty(), netns) {
        match networks(engine) {
            Ok(nets) => {
                let t0 = std::time::Instant::now();
                for att in &atts {
                    if let Err(e) = nets.disconnect(att, &ns) {
                        errors.push(format!("network teardown: {e}"));
                    }
                }
                tracing::debug!("netavark teardown took {:?}", t0.elapsed());
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    c.active.network = None;
    c.active.netns = None;
    if let Some(ns) = Netns::open(engine.layout.run(), &c.id) {
        if let Err(e) = ns.remove() {
            errors.push(format!("network namespace: {e}"));
        }
    }
    errors
}
