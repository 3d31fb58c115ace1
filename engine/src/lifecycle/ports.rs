//! The host ports a container publishes: `-p` specs as given, and `-P` for
//! every exposed port (host port 0: picked when the network connects).

use anyhow::Result;
use skiff_specs::net::{parse_publish, PortMapping, Protocol};

use crate::container::record::Container;

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
    // A host port of 0 is picked by the network layer when it connects.
    Ok(out)
}
