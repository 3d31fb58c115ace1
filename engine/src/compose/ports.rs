//! Service ports. Short syntax `[[IP:][HOST]:]CONTAINER[/PROTOCOL]` with port
//! ranges (`9090-9091:8080-8081` is two ports, `3000-3005` six unpublished
//! ones, `8000-8010:80` one port published on any free host port of the
//! range) and `[::1]:80:80` for IPv6; long syntax `{target, published,
//! host_ip, protocol, mode, name, app_protocol}`.

use std::net::IpAddr;

use serde_yaml::Value;

use super::error::Result;
use super::model::Port;
use super::reader::{Reader, Spec};

const LONG: Spec = Spec {
    known: &[
        "target",
        "published",
        "host_ip",
        "protocol",
        "mode",
        "name",
        "app_protocol",
    ],
    unsupported: &[],
    ignored: &[],
};

/// One entry of `ports` (a string, a number or a mapping): the ports it stands for.
pub(crate) fn parse_entry(r: &mut Reader, value: &Value, path: &str) -> Result<Vec<Port>> {
    match value {
        Value::Mapping(_) => Ok(vec![parse_long(r, value, path)?]),
        Value::String(_) | Value::Number(_) => {
            let spec = r.string(value, path)?;
            parse_short(&spec).map_err(|m| r.err(path, m))
        }
        other => Err(r.err(
            path,
            format!(
                "a port must be a string or a mapping, not {}",
                super::yaml::kind(other)
            ),
        )),
    }
}

pub(crate) fn parse_short(spec: &str) -> std::result::Result<Vec<Port>, String> {
    let invalid = |why: &str| {
        if why.is_empty() {
            format!("invalid port {spec:?}")
        } else {
            format!("invalid port {spec:?}: {why}")
        }
    };
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p.to_owned()),
        None => (spec, "tcp".to_owned()),
    };
    check_protocol(&protocol).map_err(|w| invalid(&w))?;
    let (host_ip, rest) = if let Some(after) = addr.strip_prefix('[') {
        let (ip, rest) = after.split_once(']').ok_or_else(|| invalid(""))?;
        let rest = rest.strip_prefix(':').ok_or_else(|| invalid(""))?;
        (Some(ip.to_owned()), rest)
    } else {
        (None, addr)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host, container) = match (host_ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => (Some((*ip).to_owned()), Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => return Err(invalid("")),
    };
    if let Some(ip) = &host_ip {
        ip.parse::<IpAddr>()
            .map_err(|_| invalid(&format!("{ip:?} is not an IP address")))?;
    }
    let host = host.filter(|h| !h.is_empty());
    let (c_start, c_end) = range(container).ok_or_else(|| invalid(""))?;
    let host_range = match host {
        Some(h) => Some(range(h).ok_or_else(|| invalid(""))?),
        None => None,
    };
    let count = c_end - c_start;
    let port = |target: u16, published: Option<String>| Port {
        name: None,
        mode: "ingress".to_owned(),
        host_ip: host_ip.clone(),
        target,
        published,
        protocol: protocol.clone(),
        app_protocol: None,
    };
    match host_range {
        None => Ok((c_start..=c_end).map(|t| port(t, None)).collect()),
        Some((h_start, h_end)) if count == 0 => {
            let published = if h_start == h_end {
                h_start.to_string()
            } else {
                format!("{h_start}-{h_end}")
            };
            Ok(vec![port(c_start, Some(published))])
        }
        Some((h_start, h_end)) if h_end - h_start == count => Ok((0..=count)
            .map(|i| port(c_start + i, Some((h_start + i).to_string())))
            .collect()),
        Some(_) => Err(invalid("host and container port ranges differ in length")),
    }
}

fn parse_long(r: &mut Reader, value: &Value, path: &str) -> Result<Port> {
    let f = r.fields(value, path, &LONG)?;
    let target_path = f.path("target");
    let target = match f.get("target") {
        Some(v) => {
            let t = r.u64(v, &target_path)?;
            u16::try_from(t)
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| r.err(&target_path, format!("invalid port {t}")))?
        }
        None => return Err(r.err(path, "a port needs a target (the container port)")),
    };
    let published = match r.opt_string(&f, "published")? {
        Some(p) if p.is_empty() => None,
        Some(p) => {
            range(&p).ok_or_else(|| r.err(&f.path("published"), format!("invalid port {p:?}")))?;
            Some(p)
        }
        None => None,
    };
    let host_ip = r.opt_string(&f, "host_ip")?.filter(|s| !s.is_empty());
    if let Some(ip) = &host_ip {
        ip.parse::<IpAddr>()
            .map_err(|_| r.err(&f.path("host_ip"), format!("{ip:?} is not an IP address")))?;
    }
    let protocol = r
        .opt_string(&f, "protocol")?
        .unwrap_or_else(|| "tcp".to_owned())
        .to_ascii_lowercase();
    check_protocol(&protocol).map_err(|m| r.err(&f.path("protocol"), m))?;
    let mode = r
        .opt_string(&f, "mode")?
        .unwrap_or_else(|| "ingress".to_owned());
    if mode != "ingress" && mode != "host" {
        return Err(r.err(
            &f.path("mode"),
            format!("invalid mode {mode:?}: use host or ingress"),
        ));
    }
    Ok(Port {
        name: r.opt_string(&f, "name")?,
        mode,
        host_ip,
        target,
        published,
        protocol,
        app_protocol: r.opt_string(&f, "app_protocol")?,
    })
}

fn check_protocol(p: &str) -> std::result::Result<(), String> {
    match p {
        "tcp" | "udp" | "sctp" => Ok(()),
        other => Err(format!("unknown protocol {other:?}: use tcp, udp or sctp")),
    }
}

/// `80` or `8000-8010`, ports 1 to 65535.
fn range(s: &str) -> Option<(u16, u16)> {
    let one = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            (a <= b).then_some((a, b))
        }
        None => one(s).map(|p| (p, p)),
    }
}

/// One `expose` entry: `3000`, `8000-8010`, `53/udp`.
pub(crate) fn check_expose(entry: &str) -> std::result::Result<(), String> {
    let (ports, protocol) = match entry.split_once('/') {
        Some((p, proto)) => (p, Some(proto)),
        None => (entry, None),
    };
    if let Some(p) = protocol {
        check_protocol(p)?;
    }
    range(ports)
        .map(|_| ())
        .ok_or_else(|| format!("invalid port {entry:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(spec: &str) -> Vec<(Option<String>, u16, Option<String>, String)> {
        parse_short(spec)
            .expect("valid")
            .into_iter()
            .map(|p| (p.host_ip, p.target, p.published, p.protocol))
            .collect()
    }

    fn p(
        ip: Option<&str>,
        t: u16,
        pb: Option<&str>,
        proto: &str,
    ) -> (Option<String>, u16, Option<String>, String) {
        (
            ip.map(str::to_owned),
            t,
            pb.map(str::to_owned),
            proto.to_owned(),
        )
    }

    #[test]
    fn short_syntax() {
        assert_eq!(short("3000"), [p(None, 3000, None, "tcp")]);
        assert_eq!(short("8000:8000"), [p(None, 8000, Some("8000"), "tcp")]);
        assert_eq!(short("49100:22"), [p(None, 22, Some("49100"), "tcp")]);
        assert_eq!(
            short("127.0.0.1:8001:8001"),
            [p(Some("127.0.0.1"), 8001, Some("8001"), "tcp")]
        );
        assert_eq!(short("6060:6060/udp"), [p(None, 6060, Some("6060"), "udp")]);
        assert_eq!(
            short("[::1]:6001:6001"),
            [p(Some("::1"), 6001, Some("6001"), "tcp")]
        );
        assert_eq!(
            short("127.0.0.1::5000"),
            [p(Some("127.0.0.1"), 5000, None, "tcp")]
        );
        assert_eq!(short("12400:80/sctp"), [p(None, 80, Some("12400"), "sctp")]);
    }

    #[test]
    fn ranges() {
        assert_eq!(
            short("3000-3002"),
            [
                p(None, 3000, None, "tcp"),
                p(None, 3001, None, "tcp"),
                p(None, 3002, None, "tcp")
            ]
        );
        assert_eq!(
            short("9090-9091:8080-8081"),
            [
                p(None, 8080, Some("9090"), "tcp"),
                p(None, 8081, Some("9091"), "tcp")
            ]
        );
        assert_eq!(
            short("8000-8010:80"),
            [p(None, 80, Some("8000-8010"), "tcp")]
        );
        assert_eq!(
            short("127.0.0.1:5000-5001:5000-5001/udp"),
            [
                p(Some("127.0.0.1"), 5000, Some("5000"), "udp"),
                p(Some("127.0.0.1"), 5001, Some("5001"), "udp")
            ]
        );
    }

    #[test]
    fn invalid() {
        assert_eq!(
            parse_short("80:80:80:80"),
            Err("invalid port \"80:80:80:80\"".to_owned())
        );
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "80:",
            "1.2.3:80:80",
            "80/xyz",
            "90-80",
            "[::1]80:80",
            "8000-8001:80-82",
        ] {
            assert!(parse_short(bad).is_err(), "{bad}");
        }
        assert!(parse_short("8000-8001:80-82")
            .expect_err("must fail")
            .contains("differ in length"));
    }

    #[test]
    fn expose() {
        assert!(check_expose("3000").is_ok());
        assert!(check_expose("8000-8010/tcp").is_ok());
        assert!(check_expose("53/udp").is_ok());
        assert!(check_expose("x").is_err());
        assert!(check_expose("53/ip").is_err());
    }
}
