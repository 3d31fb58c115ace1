//! The host ports a container publishes: `-p` specs as given, `-P` for
//! every exposed port, and a free port picked for each one without a host
//! port (docker's ephemeral range).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use anyhow::{bail, Result};
use skiff_specs::net::{parse_publish, PortMapping, Protocol};

use crate::container::record::Container;

/// Linux's default ephemeral range, as docker uses it.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

pub fn resolve_ports(c: &Container) -> Result<Vec<PortMapping>> {
    if matches!(c.host.network_mode.as_str(), "host" | "none") {
        return Ok(Vec::new());
    }
    let mut out: Vec<PortMapping> = Vec::new();
    for p in &c.host.publish {
        out.extend(parse_publish(p)?);
    }
    if c.host.publish_all {
        for e in &c.config.exposed_ports {
            let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let protocol = if proto == "udp" {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            if !out
                .iter()
                .any(|m| m.container_port == port && m.protocol == protocol)
            {
                out.push(PortMapping {
                    host_ip: None,
                    host_port: 0,
                    container_port: port,
                    protocol,
                });
            }
        }
    }
    let mut taken: Vec<(u16, Protocol)> = out
        .iter()
        .filter(|m| m.host_port != 0)
        .map(|m| (m.host_port, m.protocol))
        .collect();
    for m in out.iter_mut().filter(|m| m.host_port == 0) {
        m.host_port = free_port(m.host_ip, m.protocol, &taken)?;
        taken.push((m.host_port, m.protocol));
    }
    Ok(out)
}

fn free_port(ip: Option<IpAddr>, proto: Protocol, taken: &[(u16, Protocol)]) -> Result<u16> {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut seed = [0u8; 2];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut seed);
    }
    let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u32 + 1;
    let start = u16::from_le_bytes(seed) as u32 % span;
    for i in 0..span {
        let port = *EPHEMERAL.start() + ((start + i) % span) as u16;
        if taken.contains(&(port, proto)) {
            continue;
        }
        let addr = SocketAddr::new(ip, port);
        let free = match proto {
            Protocol::Tcp => TcpListener::bind(addr).is_ok(),
            Protocol::Udp => UdpSocket::bind(addr).is_ok(),
        };
        if free {
            return Ok(port);
        }
    }
    bail!("no free host port left in {EPHEMERAL:?}")
}
