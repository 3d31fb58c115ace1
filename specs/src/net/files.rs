//! A container's /etc/hosts, /etc/resolv.conf and /etc/hostname, in
//! docker's formats.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::attach::Attachment;
use super::error::NetError;
use super::store::Network;

/// The host's resolver configuration, read when a container does not use a
/// network's DNS.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// docker's fallback when the host has no usable nameserver.
pub const FALLBACK_NAMESERVERS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
];

/// /etc/hosts: docker's localhost lines, then `extra` (--add-host), then
/// each of the container's addresses with its hostname and the aliases it
/// has on that network.
pub fn hosts_file(hostname: &str, att: Option<&Attachment>, extra: &[(String, IpAddr)]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(att) = att {
        for iface in &att.interfaces {
            let mut names = vec![hostname.to_string()];
            for alias in &iface.aliases {
                if !names.contains(alias) {
                    names.push(alias.clone());
                }
            }
            out.push_str(&format!("{}\t{}\n", iface.ip, names.join(" ")));
        }
    }
    out
}

/// /etc/hostname.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// /etc/resolv.conf. When one of the container's networks has DNS (a user
/// network), the nameservers are that network's (its gateway, where
/// aardvark-dns answers for container names and forwards the rest), followed
/// by `dns` if given, with the network's search domain. Otherwise (the
/// default bridge, no network) it is the host's resolv.conf with loopback
/// nameservers dropped (they mean nothing in another network namespace),
/// `dns` replacing the nameservers if given, and docker's fallback 8.8.8.8
/// and 8.8.4.4 if none is left. `dns_search` replaces the search domains.
pub fn resolv_conf(
    att: Option<&Attachment>,
    networks: &[Network],
    dns: &[IpAddr],
    dns_search: &[String],
) -> Result<String, NetError> {
    let path = Path::new(HOST_RESOLV_CONF);
    let host = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(NetError::io("reading", path)(e)),
    };
    Ok(resolv_conf_from(&host, att, networks, dns, dns_search))
}

/// [`resolv_conf`] from the host's resolv.conf text.
pub fn resolv_conf_from(
    host: &str,
    att: Option<&Attachment>,
    networks: &[Network],
    dns: &[IpAddr],
    dns_search: &[String],
) -> String {
    let uses_network_dns = att.is_some_and(|att| {
        !att.dns_servers.is_empty()
            && att.interfaces.iter().any(|iface| {
                networks
                    .iter()
                    .any(|n| n.id == iface.network_id && n.dns && n.is_bridge())
            })
    });
    let mut nameservers: Vec<IpAddr> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => {
                search = words.map(str::to_string).collect();
            }
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    match att {
        Some(att) if uses_network_dns => {
            nameservers.extend(&att.dns_servers);
            nameservers.extend(dns.iter().filter(|ip| !att.dns_servers.contains(ip)));
            let mut domains = att.dns_search.clone();
            domains.extend(search.into_iter().filter(|d| !att.dns_search.contains(d)));
            search = domains;
        }
        _ if !dns.is_empty() => nameservers.extend(dns),
        _ => {
            nameservers.extend(nameservers_of(host).filter(|ip| !ip.is_loopback()));
            if nameservers.is_empty() {
                nameservers.extend(FALLBACK_NAMESERVERS);
            }
        }
    }
    if !dns_search.is_empty() {
        search = dns_search.to_vec();
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The `nameserver` addresses of a resolv.conf text.
pub(crate) fn nameservers(text: &str) -> Vec<IpAddr> {
    nameservers_of(text).collect()
}

fn nameservers_of(text: &str) -> impl Iterator<Item = IpAddr> + '_ {
    text.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            // A scoped IPv6 address (fe80::1%eth0) keeps its scope out.
            (Some("nameserver"), Some(addr)) => addr.split('%').next()?.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::attach::Interface;
    use crate::net::store::Driver;
    use std::collections::BTreeMap;

    fn network(id: &str, dns: bool) -> Network {
        Network {
            id: id.into(),
            name: format!("net-{id}"),
            driver: Driver::Bridge,
            subnet: Some("10.5.0.0/24".parse().expect("net")),
            gateway: Some(Ipv4Addr::new(10, 5, 0, 1)),
            bridge: Some("sk-test".into()),
            internal: false,
            dns,
            labels: BTreeMap::new(),
            created: String::new(),
        }
    }

    fn attachment(network_id: &str, dns: &[&str]) -> Attachment {
        Attachment {
            container_id: "c1".into(),
            container_name: "web".into(),
            interfaces: vec![Interface {
                network: format!("net-{network_id}"),
                network_id: network_id.into(),
                interface_name: "eth0".into(),
                ip: Ipv4Addr::new(10, 5, 0, 2),
                prefix_len: 24,
                gateway: Ipv4Addr::new(10, 5, 0, 1),
                mac: "aa:bb:cc:dd:ee:ff".into(),
                aliases: vec!["db".into()],
                bridge: "sk-test".into(),
            }],
            ports: vec![],
            dns_servers: dns.iter().map(|s| s.parse().expect("ip")).collect(),
            dns_search: if dns.is_empty() {
                vec![]
            } else {
                vec!["dns.podman".into()]
            },
        }
    }

    const HOST: &str = "# generated\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 10.255.255.53\noptions edns0 trust-ad\n";

    #[test]
    fn hosts() {
        let att = attachment("n1", &[]);
        let extra = vec![("gw.example".to_string(), "192.0.2.9".parse().expect("ip"))];
        let text = hosts_file("abc123", Some(&att), &extra);
        assert!(
            text.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        );
        assert!(text.contains("192.0.2.9\tgw.example\n"));
        assert!(text.ends_with("10.5.0.2\tabc123 db\n"), "{text}");
        let bare = hosts_file("abc123", None, &[]);
        assert!(!bare.contains("abc123"));
        assert_eq!(hostname_file("abc123"), "abc123\n");
    }

    #[test]
    fn resolv_user_network() {
        let att = attachment("n1", &["10.5.0.1"]);
        let nets = [network("n1", true)];
        let text = resolv_conf_from(HOST, Some(&att), &nets, &[], &[]);
        assert_eq!(
            text,
            "search dns.podman corp.example\nnameserver 10.5.0.1\noptions edns0 trust-ad\n"
        );
        let extra: Vec<IpAddr> = vec!["9.9.9.9".parse().expect("ip")];
        let text = resolv_conf_from(HOST, Some(&att), &nets, &extra, &["x.example".into()]);
        assert_eq!(
            text,
            "search x.example\nnameserver 10.5.0.1\nnameserver 9.9.9.9\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn resolv_default_bridge_and_none() {
        let att = attachment("n1", &[]);
        let nets = [network("n1", false)];
        let text = resolv_conf_from(HOST, Some(&att), &nets, &[], &[]);
        assert_eq!(
            text,
            "search corp.example\nnameserver 10.255.255.53\noptions edns0 trust-ad\n"
        );
        let only_loopback = "nameserver 127.0.0.53\nnameserver ::1\n";
        let text = resolv_conf_from(only_loopback, None, &[], &[], &[]);
        assert_eq!(text, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let dns: Vec<IpAddr> = vec!["1.1.1.1".parse().expect("ip")];
        let text = resolv_conf_from(HOST, None, &[], &dns, &[]);
        assert!(
            text.contains("nameserver 1.1.1.1\n") && !text.contains("10.255"),
            "{text}"
        );
        assert_eq!(
            nameservers("nameserver fe80::1%eth0\nnameserver 1.2.3.4\n"),
            vec![
                "fe80::1".parse::<IpAddr>().expect("ip"),
                "1.2.3.4".parse().expect("ip")
            ]
        );
    }
}
