//! Running netavark 1.4: the JSON it reads for `setup` and `teardown`, the
//! status it prints, and its errors.
//!
//! Facts of netavark 1.4 on Debian 12 that shape this file:
//! - it reports an error as `{"error":"..."}` on stdout and exits 1;
//! - a failed setup leaves what it made so far; a teardown with the same
//!   options clears it (and may itself report an error for the parts that
//!   were never made, such as the DNS entry);
//! - teardown needs the namespace path and the container's interfaces in it:
//!   with an interface missing it stops before the firewall and the bridge
//!   (`attach.rs` puts a stand-in veth there first);
//! - one port mapping per protocol ("tcp,udp" is refused by iptables);
//! - `--aardvark-binary` must be given (Debian installs aardvark-dns under
//!   /usr/lib/podman, where netavark does not look, and DNS is then silently
//!   off), and `--config` is where aardvark-dns's configuration and pid live;
//! - it runs the `iptables` program from PATH; `NETAVARK_FW=iptables` keeps
//!   it on iptables even where firewalld runs, so the firewall is the same
//!   everywhere;
//! - the network's name names its chains (a hash of it) and its aardvark-dns
//!   file, so networks of different stores must not share one: we give
//!   netavark the network id as the name.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::error::NetError;
use super::ports::PortMapping;
use super::store::Network;
use super::NetConfig;

/// The input of `netavark setup|teardown`.
#[derive(Serialize, Debug)]
pub(crate) struct Options {
    container_id: String,
    container_name: String,
    port_mappings: Vec<PortOption>,
    networks: BTreeMap<String, PerNetwork>,
    network_info: BTreeMap<String, NetworkInfo>,
}

#[derive(Serialize, Debug)]
struct PortOption {
    host_ip: String,
    container_port: u16,
    host_port: u16,
    range: u16,
    protocol: &'static str,
}

#[derive(Serialize, Debug)]
struct PerNetwork {
    static_ips: Vec<IpAddr>,
    aliases: Vec<String>,
    interface_name: String,
}

#[derive(Serialize, Debug)]
struct NetworkInfo {
    name: String,
    id: String,
    driver: &'static str,
    network_interface: String,
    subnets: Vec<SubnetInfo>,
    ipv6_enabled: bool,
    internal: bool,
    dns_enabled: bool,
    options: BTreeMap<&'static str, &'static str>,
    ipam_options: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize, Debug)]
struct SubnetInfo {
    subnet: String,
    gateway: Ipv4Addr,
}

/// One network of a setup or teardown: the network, the container's
/// interface in it, its address and DNS names.
pub(crate) struct Member<'a> {
    pub network: &'a Network,
    pub interface_name: &'a str,
    pub ip: Ipv4Addr,
    pub aliases: &'a [String],
}

impl Options {
    pub(crate) fn new(
        container_id: &str,
        container_name: &str,
        members: &[Member<'_>],
        ports: &[PortMapping],
    ) -> Result<Options, NetError> {
        let mut networks = BTreeMap::new();
        let mut network_info = BTreeMap::new();
        for m in members {
            let net = m.network;
            let (Some(subnet), Some(gateway), Some(bridge)) =
                (net.subnet, net.gateway, &net.bridge)
            else {
                return Err(NetError::Predefined {
                    name: net.name.clone(),
                    action: "cannot be set up by netavark",
                });
            };
            networks.insert(
                net.id.clone(),
                PerNetwork {
                    static_ips: vec![IpAddr::V4(m.ip)],
                    aliases: m.aliases.to_vec(),
                    interface_name: m.interface_name.to_string(),
                },
            );
            network_info.insert(
                net.id.clone(),
                NetworkInfo {
                    name: net.id.clone(),
                    id: net.id.clone(),
                    driver: "bridge",
                    network_interface: bridge.clone(),
                    subnets: vec![SubnetInfo {
                        subnet: subnet.to_string(),
                        gateway,
                    }],
                    ipv6_enabled: false,
                    internal: net.internal,
                    dns_enabled: net.dns,
                    // docker's isolation between networks: netavark 1.4 adds
                    // NETAVARK_ISOLATION_1/2 rules (-i br ! -o br, then -o br DROP).
                    options: BTreeMap::from([("isolate", "true")]),
                    ipam_options: BTreeMap::from([("driver", "host-local")]),
                },
            );
        }
        let port_mappings = ports
            .iter()
            .map(|p| PortOption {
                host_ip: p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                container_port: p.container_port,
                host_port: p.host_port,
                range: 1,
                protocol: p.protocol.as_str(),
            })
            .collect();
        Ok(Options {
            container_id: container_id.to_string(),
            container_name: container_name.to_string(),
            port_mappings,
            networks,
            network_info,
        })
    }

    fn network_ids(&self) -> String {
        let ids: Vec<&str> = self
            .networks
            .keys()
            .map(|k| &k[..k.len().min(12)])
            .collect();
        ids.join(", ")
    }
}

/// netavark's status for one network (the output of setup is a map of these).
#[derive(Deserialize, Debug, Default)]
pub(crate) struct Status {
    #[serde(default)]
    pub dns_search_domains: Option<Vec<String>>,
    #[serde(default)]
    pub dns_server_ips: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub interfaces: Option<BTreeMap<String, StatusInterface>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct StatusInterface {
    pub mac_address: String,
    #[serde(default)]
    pub subnets: Option<Vec<StatusAddress>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct StatusAddress {
    pub ipnet: String,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

pub(crate) struct Netavark<'a> {
    cfg: &'a NetConfig,
}

impl<'a> Netavark<'a> {
    pub(crate) fn new(cfg: &'a NetConfig) -> Netavark<'a> {
        Netavark { cfg }
    }

    /// aardvark-dns's configuration directory (netavark's `--config`).
    pub(crate) fn config_dir(cfg: &NetConfig) -> PathBuf {
        cfg.run_dir.join("aardvark")
    }

    pub(crate) fn setup(
        &self,
        netns: &Path,
        opts: &Options,
    ) -> Result<BTreeMap<String, Status>, NetError> {
        let stdout = self.run("setup", netns, opts)?;
        serde_json::from_slice(&stdout).map_err(|e| NetError::Netavark {
            op: "setup",
            container: opts.container_id.clone(),
            networks: opts.network_ids(),
            netns: netns.to_owned(),
            message: format!(
                "unreadable status ({e}): {}",
                String::from_utf8_lossy(&stdout).trim()
            ),
        })
    }

    pub(crate) fn teardown(&self, netns: &Path, opts: &Options) -> Result<(), NetError> {
        self.run("teardown", netns, opts).map(drop)
    }

    fn run(&self, op: &'static str, netns: &Path, opts: &Options) -> Result<Vec<u8>, NetError> {
        let fail = |message: String| NetError::Netavark {
            op,
            container: opts.container_id.clone(),
            networks: opts.network_ids(),
            netns: netns.to_owned(),
            message,
        };
        let input = serde_json::to_vec(opts).map_err(|e| fail(e.to_string()))?;
        let config = Self::config_dir(self.cfg);
        super::fsutil::create_dir(&config)?;
        let mut child = Command::new(&self.cfg.netavark)
            .arg("--config")
            .arg(&config)
            .arg("--aardvark-binary")
            .arg(&self.cfg.aardvark)
            .arg(op)
            .arg(netns)
            .env("NETAVARK_FW", "iptables")
            .env("PATH", search_path(&self.cfg.iptables))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("running {}: {e}", self.cfg.netavark.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            // netavark reads all of it before it does anything; if it exits
            // early its error is on stdout, read below.
            let _ = stdin.write_all(&input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for netavark: {e}")))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        if let Ok(reply) = serde_json::from_slice::<ErrorReply>(&out.stdout) {
            return Err(fail(reply.error.trim().to_string()));
        }
        // No JSON error: what it printed, minus its syslog complaint.
        let stderr: Vec<&str> = std::str::from_utf8(&out.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("failed to connect to syslog"))
            .collect();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut message = format!("exited with {}", out.status);
        for text in [stdout.trim(), stderr.join("\n").trim()] {
            if !text.is_empty() {
                message.push_str(": ");
                message.push_str(text);
            }
        }
        Err(fail(message))
    }
}

/// PATH for netavark: the directory of the iptables we found first, then
/// the usual ones (a daemon's or sudo's PATH may lack the sbin directories).
fn search_path(iptables: &Path) -> String {
    let mut dirs: Vec<String> = Vec::new();
    if let Some(dir) = iptables.parent() {
        dirs.push(dir.display().to_string());
    }
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_string());
        }
    }
    dirs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ports::Protocol;
    use crate::net::store::Driver;

    #[test]
    fn options_json() {
        let net = Network {
            id: "ab".repeat(32),
            name: "front".into(),
            driver: Driver::Bridge,
            subnet: Some("10.9.8.0/24".parse().expect("net")),
            gateway: Some(Ipv4Addr::new(10, 9, 8, 1)),
            bridge: Some("sk-abababababab".into()),
            internal: false,
            dns: true,
            labels: Default::default(),
            created: String::new(),
        };
        let aliases = vec!["db".to_string()];
        let opts = Options::new(
            "c0ffee",
            "web",
            &[Member {
                network: &net,
                interface_name: "eth0",
                ip: Ipv4Addr::new(10, 9, 8, 2),
                aliases: &aliases,
            }],
            &[PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Udp,
            }],
        )
        .expect("options");
        let json: serde_json::Value = serde_json::to_value(&opts).expect("json");
        let id = net.id.as_str();
        assert_eq!(json["networks"][id]["static_ips"][0], "10.9.8.2");
        assert_eq!(json["networks"][id]["interface_name"], "eth0");
        assert_eq!(json["network_info"][id]["name"], id);
        assert_eq!(
            json["network_info"][id]["network_interface"],
            "sk-abababababab"
        );
        assert_eq!(
            json["network_info"][id]["subnets"][0]["subnet"],
            "10.9.8.0/24"
        );
        assert_eq!(json["network_info"][id]["options"]["isolate"], "true");
        assert_eq!(json["port_mappings"][0]["protocol"], "udp");
        assert_eq!(json["port_mappings"][0]["host_ip"], "");
        assert_eq!(json["port_mappings"][0]["range"], 1);
    }

    #[test]
    fn status_json() {
        let text = r#"{"x":{"dns_search_domains":["dns.podman"],"dns_server_ips":["10.231.7.1"],"interfaces":{"eth0":{"mac_address":"aa:c2:9b:24:8c:2e","subnets":[{"gateway":"10.231.7.1","ipnet":"10.231.7.2/24"}]}}}}"#;
        let status: BTreeMap<String, Status> = serde_json::from_str(text).expect("status");
        let s = &status["x"];
        assert_eq!(
            s.dns_search_domains.as_deref(),
            Some(&["dns.podman".to_string()][..])
        );
        let eth0 = &s.interfaces.as_ref().expect("interfaces")["eth0"];
        assert_eq!(eth0.mac_address, "aa:c2:9b:24:8c:2e");
        assert_eq!(
            eth0.subnets.as_ref().expect("subnets")[0].ipnet,
            "10.231.7.2/24"
        );
    }

    #[test]
    fn path_starts_with_iptables_dir() {
        assert!(search_path(Path::new("/opt/x/iptables")).starts_with("/opt/x:/usr/local/sbin"));
        assert_eq!(
            search_path(Path::new("/usr/sbin/iptables"))
                .matches("/usr/sbin")
                .count(),
            1
        );
    }
}
