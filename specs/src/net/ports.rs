//! Published ports: docker's `-p` syntax, conflicts between mappings, the
//! bind test on the host, and picking a free ephemeral port.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use super::error::NetError;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port. `host_ip` `None` means every host address;
/// `host_port` 0 means "pick a free port" (resolved by `connect`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    /// `-P` for one exposed port: every address, a free host port.
    pub fn ephemeral(container_port: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port: 0,
            container_port,
            protocol,
        }
    }

    /// Whether both would take the same host socket: same protocol and port
    /// (not 0), and addresses that are equal or one of them "all".
    pub fn conflicts(&self, other: &PortMapping) -> bool {
        let all = |ip: Option<IpAddr>| ip.is_none_or(|ip| ip.is_unspecified());
        self.protocol == other.protocol
            && self.host_port != 0
            && self.host_port == other.host_port
            && (all(self.host_ip) || all(other.host_ip) || self.host_ip == other.host_ip)
    }
}

/// docker's `docker port` form: `80/tcp -> 0.0.0.0:8080`.
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host_ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
        };
        write!(
            f,
            "{}/{} -> {host}:{}",
            self.container_port, self.protocol, self.host_port
        )
    }
}

/// docker's `-p` syntax: `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, with
/// ranges (`8000-8002:80-82`, as many host ports as container ports), IPv6
/// addresses in brackets (`[::1]:8080:80`) and an empty or missing host port
/// for a free ephemeral one (`127.0.0.1::80`, `80`). Protocols: tcp, udp.
/// Errors name the flag and its value as docker does.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, NetError> {
    let bad = |reason: String| NetError::InvalidPublish {
        spec: spec.to_string(),
        reason,
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto),
        None => (spec, ""),
    };
    let protocol = match proto {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => {
            return Err(bad(format!(
                "invalid proto: {other} (one of tcp or udp; publish each protocol with its own -p)"
            )))
        }
    };
    if rest.is_empty() {
        return Err(bad("no port specified".into()));
    }
    let (ip_text, host_text, container_text) = split_publish(rest);
    let host_ip = match ip_text {
        None | Some("") => None,
        Some(text) => {
            let trimmed = text.trim_start_matches('[').trim_end_matches(']');
            Some(
                trimmed
                    .parse::<IpAddr>()
                    .map_err(|_| bad(format!("invalid IP address: {text}")))?,
            )
        }
    };
    if container_text.is_empty() {
        return Err(bad("no container port specified".into()));
    }
    let (c_start, c_end) = port_range(container_text)
        .map_err(|reason| bad(format!("invalid containerPort: {container_text}: {reason}")))?;
    if c_start == 0 {
        return Err(bad(format!(
            "invalid containerPort: {container_text}: port 0 cannot be published"
        )));
    }
    let count = c_end - c_start;
    let host_start = match host_text {
        None | Some("") => None,
        Some(text) => {
            let (h_start, h_end) = port_range(text)
                .map_err(|reason| bad(format!("invalid hostPort: {text}: {reason}")))?;
            if h_end - h_start != count {
                return Err(bad(format!(
                    "invalid ranges specified for container and host Ports: {container_text} and {text} (give as many host ports as container ports)"
                )));
            }
            Some(h_start)
        }
    };
    Ok((0..=count)
        .map(|i| PortMapping {
            host_ip,
            host_port: host_start.map_or(0, |h| h + i),
            container_port: c_start + i,
            protocol,
        })
        .collect())
}

/// Splits `[IP:][HOST:]CONTAINER` (docker's rules: with more than three
/// colon-separated parts the front ones are an unbracketed IPv6 address).
fn split_publish(rest: &str) -> (Option<&str>, Option<&str>, &str) {
    if let Some(after_bracket) = rest.strip_prefix('[') {
        if let Some(end) = after_bracket.find(']') {
            let ip = &rest[..end + 2];
            let tail = rest[end + 2..]
                .strip_prefix(':')
                .unwrap_or(&rest[end + 2..]);
            return match tail.split_once(':') {
                Some((host, container)) => (Some(ip), Some(host), container),
                None => (Some(ip), None, tail),
            };
        }
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let n = parts.len();
    match n {
        1 => (None, None, parts[0]),
        2 => (None, Some(parts[0]), parts[1]),
        3 => (Some(parts[0]), Some(parts[1]), parts[2]),
        _ => {
            let ip_end = rest.len() - parts[n - 1].len() - parts[n - 2].len() - 2;
            (Some(&rest[..ip_end]), Some(parts[n - 2]), parts[n - 1])
        }
    }
}

/// `N` or `N-M` (M ≥ N), ports 0–65535.
fn port_range(text: &str) -> Result<(u16, u16), String> {
    let port = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("{s:?} is not a port number (0-65535)"))
    };
    match text.split_once('-') {
        None => {
            let p = port(text)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("the range {text} ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

/// The address a bind test or an ephemeral pick binds.
fn bind_addr(host_ip: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

/// Binds the mapping's host socket for a moment: an error means a host
/// process holds it (or the address is not the host's).
pub(crate) fn bind_test(m: &PortMapping) -> io::Result<()> {
    let addr = bind_addr(m.host_ip, m.host_port);
    match m.protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    }
}

/// A port the kernel considers free now (from its ephemeral range).
pub(crate) fn ephemeral_port(protocol: Protocol, host_ip: Option<IpAddr>) -> io::Result<u16> {
    let addr = bind_addr(host_ip, 0);
    let local = match protocol {
        Protocol::Tcp => TcpListener::bind(addr)?.local_addr()?,
        Protocol::Udp => UdpSocket::bind(addr)?.local_addr()?,
    };
    Ok(local.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let v = parse_publish(spec).expect(spec);
        assert_eq!(v.len(), 1, "{spec}");
        v[0]
    }

    #[test]
    fn publish_forms() {
        let m = one("8080:80");
        assert_eq!((m.host_ip, m.host_port, m.container_port), (None, 8080, 80));
        assert_eq!(m.protocol, Protocol::Tcp);
        let m = one("80");
        assert_eq!((m.host_port, m.container_port), (0, 80));
        let m = one("127.0.0.1:8080:80/udp");
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(m.protocol, Protocol::Udp);
        let m = one("127.0.0.1::80");
        assert_eq!((m.host_port, m.container_port), (0, 80));
        let m = one("[::1]:8080:80");
        assert_eq!(m.host_ip, Some("::1".parse().expect("ip")));
        let m = one("::1:8080:80");
        assert_eq!(m.host_ip, Some("::1".parse().expect("ip")));
        assert_eq!((m.host_port, m.container_port), (8080, 80));
        let m = one("53/udp");
        assert_eq!((m.host_port, m.container_port), (0, 53));
        let range = parse_publish("8000-8002:80-82").expect("range");
        let pairs: Vec<(u16, u16)> = range
            .iter()
            .map(|m| (m.host_port, m.container_port))
            .collect();
        assert_eq!(pairs, vec![(8000, 80), (8001, 81), (8002, 82)]);
        let range = parse_publish("80-81").expect("range");
        assert!(range.iter().all(|m| m.host_port == 0));
        assert_eq!(range.len(), 2);
    }

    #[test]
    fn publish_errors_name_the_flag() {
        for (spec, needle) in [
            ("", "no port specified"),
            ("8080:80/tcp,udp", "invalid proto"),
            ("8080:80/sctp", "invalid proto"),
            ("abc", "invalid containerPort"),
            ("x:80", "invalid hostPort"),
            ("1.2.3:8080:80", "invalid IP address"),
            ("8000-8001:80", "invalid ranges"),
            ("8080:0", "port 0"),
            ("8080:", "no container port"),
            ("70000:80", "invalid hostPort"),
            ("82-80", "ends before"),
        ] {
            let err = parse_publish(spec).expect_err(spec).to_string();
            assert!(err.contains("\"-p, --publish\" flag"), "{err}");
            assert!(err.contains(&format!("{spec:?}")), "{err}");
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn conflicts() {
        let m = |ip: Option<&str>, port, proto| PortMapping {
            host_ip: ip.map(|s| s.parse().expect("ip")),
            host_port: port,
            container_port: 80,
            protocol: proto,
        };
        use Protocol::*;
        assert!(m(None, 80, Tcp).conflicts(&m(Some("127.0.0.1"), 80, Tcp)));
        assert!(m(Some("0.0.0.0"), 80, Tcp).conflicts(&m(Some("10.0.0.1"), 80, Tcp)));
        assert!(!m(Some("127.0.0.1"), 80, Tcp).conflicts(&m(Some("10.0.0.1"), 80, Tcp)));
        assert!(!m(None, 80, Tcp).conflicts(&m(None, 80, Udp)));
        assert!(!m(None, 80, Tcp).conflicts(&m(None, 81, Tcp)));
        assert!(!m(None, 0, Tcp).conflicts(&m(None, 0, Tcp)));
        assert_eq!(m(None, 8080, Tcp).to_string(), "80/tcp -> 0.0.0.0:8080");
        let json = serde_json::to_string(&m(None, 8080, Udp)).expect("json");
        assert!(json.contains("\"udp\""), "{json}");
    }

    #[test]
    fn bind_test_sees_a_bound_port() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mapping = PortMapping {
            host_ip: None,
            host_port: port,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert!(bind_test(&mapping).is_err());
        drop(listener);
        let free = ephemeral_port(Protocol::Udp, None).expect("ephemeral");
        assert_ne!(free, 0);
    }
}
