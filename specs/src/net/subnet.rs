//! IPv4 subnets: the `Ipv4Net` type, what the host already uses (routes,
//! addresses, nameservers), and picking a free subnet from the pools.
//!
//! Pools, in order: docker's 172.17.0.0/16 … 172.31.0.0/16 (a /16 each),
//! then 10.0.0.0/8 in /24s. A candidate is skipped when it overlaps a route of
//! the main table (`/proc/net/route`, the default route excepted), an address
//! of a host interface, an IPv4 nameserver of the host's resolv.conf (it is
//! reached through the default route, which a bridge would shadow), another
//! network of the store, or a subnet claimed by another store on this host
//! (`claims.rs`).

use std::fmt;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::NetError;

/// An IPv4 network: an address with its host bits zero and a prefix length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `addr/prefix`; `addr` must be the network's own address (host bits zero).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, NetError> {
        let text = format!("{addr}/{prefix}");
        if prefix > 32 {
            return Err(NetError::InvalidSubnet {
                subnet: text,
                reason: "the prefix length is more than 32".into(),
            });
        }
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(NetError::InvalidSubnet {
                subnet: text,
                reason: format!("host bits are set (the network is {})", net.truncated()),
            });
        }
        Ok(net)
    }

    /// The network holding `addr` with `prefix` (host bits cleared).
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
        let prefix = prefix.min(32);
        let net = Ipv4Net { addr, prefix };
        Ipv4Net {
            addr: net.network(),
            prefix,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    fn truncated(&self) -> Ipv4Net {
        Ipv4Net::containing(self.addr, self.prefix)
    }

    /// The last address (the broadcast address of a bridge subnet).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The first address after the network address: the default gateway.
    pub fn first_host(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then(|| Ipv4Addr::from(u32::from(self.addr) + 1))
    }

    /// Whether `ip` can be given to a container or a gateway: inside, and
    /// neither the network nor the broadcast address.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast()
    }

    /// File-name form (`10.1.2.0_24`), for claims.
    pub(crate) fn file_name(&self) -> String {
        format!("{}_{}", self.addr, self.prefix)
    }

    pub(crate) fn from_file_name(name: &str) -> Option<Ipv4Net> {
        let (addr, prefix) = name.split_once('_')?;
        Ipv4Net::new(addr.parse().ok()?, prefix.parse().ok()?).ok()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Ipv4Net, NetError> {
        let bad = |reason: &str| NetError::InvalidSubnet {
            subnet: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 10.1.2.0/24"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("the prefix length is not a number from 0 to 32"))?;
        Ipv4Net::new(addr, prefix).map_err(|e| match e {
            NetError::InvalidSubnet { reason, .. } => bad(&reason),
            other => other,
        })
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ipv4Net, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Something a new subnet must not overlap, with what it is (for errors).
#[derive(Clone, Debug)]
pub(crate) struct Taken {
    pub net: Ipv4Net,
    pub what: String,
}

/// A range of candidate subnets: `range` cut into pieces of `size`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pool {
    pub range: Ipv4Net,
    pub size: u8,
    /// First candidate (docker's pool starts at 172.17, not 172.16).
    pub start: Ipv4Addr,
}

/// The pools user networks and the default network come from.
pub(crate) const POOLS: [Pool; 2] = [
    Pool {
        range: Ipv4Net {
            addr: Ipv4Addr::new(172, 16, 0, 0),
            prefix: 12,
        },
        size: 16,
        start: Ipv4Addr::new(172, 17, 0, 0),
    },
    Pool {
        range: Ipv4Net {
            addr: Ipv4Addr::new(10, 0, 0, 0),
            prefix: 8,
        },
        size: 24,
        start: Ipv4Addr::new(10, 0, 0, 0),
    },
];

pub(crate) fn pools_text(pools: &[Pool]) -> String {
    let texts: Vec<String> = pools
        .iter()
        .map(|p| format!("{} (/{}s)", p.range, p.size))
        .collect();
    texts.join(", ")
}

/// The first candidate of the pools that overlaps nothing in `taken`.
pub(crate) fn pick(pools: &[Pool], taken: &[Taken]) -> Option<Ipv4Net> {
    for pool in pools {
        let step = 1u64 << (32 - u32::from(pool.size));
        let end = u64::from(u32::from(pool.range.broadcast()));
        let mut at = u64::from(u32::from(pool.start));
        while at <= end {
            let candidate = Ipv4Net::containing(Ipv4Addr::from(at as u32), pool.size);
            if !taken.iter().any(|t| t.net.overlaps(&candidate)) {
                return Some(candidate);
            }
            at += step;
        }
    }
    None
}

/// The first of `taken` that `net` overlaps.
pub(crate) fn first_overlap<'a>(net: &Ipv4Net, taken: &'a [Taken]) -> Option<&'a Taken> {
    taken.iter().find(|t| t.net.overlaps(net))
}

/// What the host uses now: routes of the main table but the default route,
/// the networks and addresses of its interfaces, and the IPv4 nameservers of
/// `resolv_conf`.
pub(crate) fn host_taken(resolv_conf: &Path) -> Result<Vec<Taken>, NetError> {
    let route_path = Path::new("/proc/net/route");
    let routes = fs::read_to_string(route_path).map_err(NetError::io("reading", route_path))?;
    let mut taken = parse_proc_routes(&routes);
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| NetError::Io {
        what: "listing the host's addresses (getifaddrs)",
        path: "/proc/self/net".into(),
        source: e.into(),
    })?;
    for ifa in addrs {
        let Some(addr) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        let ip = addr.ip();
        let prefix = ifa
            .netmask
            .as_ref()
            .and_then(|m| m.as_sockaddr_in())
            .map_or(32, |m| u32::from(m.ip()).count_ones() as u8);
        taken.push(Taken {
            net: Ipv4Net::containing(ip, prefix),
            what: format!(
                "the address {ip}/{prefix} of host interface {}",
                ifa.interface_name
            ),
        });
    }
    match fs::read_to_string(resolv_conf) {
        Ok(text) => {
            for ip in super::files::nameservers(&text) {
                if let std::net::IpAddr::V4(v4) = ip {
                    taken.push(Taken {
                        net: Ipv4Net::containing(v4, 32),
                        what: format!("the host's nameserver {v4} ({})", resolv_conf.display()),
                    });
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NetError::io("reading", resolv_conf)(e)),
    }
    Ok(taken)
}

/// Routes of `/proc/net/route` (hex fields in the kernel's byte order), the
/// default route left out: every subnet is "behind" it.
pub(crate) fn parse_proc_routes(text: &str) -> Vec<Taken> {
    let mut taken = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dest), Some(mask)) = (hex(fields[1]), hex(fields[7])) else {
            continue;
        };
        // The kernel prints the in-memory (network order) words as native
        // numbers, so their native bytes are the address bytes.
        let dest = Ipv4Addr::from(dest.to_ne_bytes());
        let mask = u32::from_be_bytes(mask.to_ne_bytes());
        if mask == 0 {
            continue;
        }
        let prefix = mask.count_ones() as u8;
        let net = Ipv4Net::containing(dest, prefix);
        taken.push(Taken {
            net,
            what: format!("the host's route to {net} on {}", fields[0]),
        });
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("test subnet")
    }

    #[test]
    fn parse_and_print() {
        assert_eq!(net("10.1.2.0/24").to_string(), "10.1.2.0/24");
        assert_eq!(net("10.1.2.0/24").broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert_eq!(
            net("10.1.2.0/24").first_host(),
            Some(Ipv4Addr::new(10, 1, 2, 1))
        );
        for bad in [
            "10.1.2.3/24",
            "10.1.2.0",
            "10.1.2.0/33",
            "x/8",
            "10.1.2.0/x",
        ] {
            let err = bad.parse::<Ipv4Net>().expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
        let json = serde_json::to_string(&net("172.17.0.0/16")).expect("json");
        assert_eq!(json, "\"172.17.0.0/16\"");
        let back: Ipv4Net = serde_json::from_str(&json).expect("json");
        assert_eq!(back, net("172.17.0.0/16"));
        assert_eq!(
            Ipv4Net::from_file_name(&net("10.9.0.0/16").file_name()),
            Some(net("10.9.0.0/16"))
        );
    }

    #[test]
    fn overlap() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.3.4.0/24")));
        assert!(net("10.3.4.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.3.4.0/24").overlaps(&net("10.3.5.0/24")));
        assert!(net("10.3.4.0/24").is_host(Ipv4Addr::new(10, 3, 4, 7)));
        assert!(!net("10.3.4.0/24").is_host(Ipv4Addr::new(10, 3, 4, 255)));
        assert!(!net("10.3.4.0/24").is_host(Ipv4Addr::new(10, 3, 4, 0)));
    }

    #[test]
    fn picks_around_what_is_taken() {
        let taken = |nets: &[&str]| -> Vec<Taken> {
            nets.iter()
                .map(|n| Taken {
                    net: net(n),
                    what: n.to_string(),
                })
                .collect()
        };
        assert_eq!(pick(&POOLS, &[]), Some(net("172.17.0.0/16")));
        assert_eq!(
            pick(&POOLS, &taken(&["172.17.5.0/24", "172.18.0.1/32"])),
            Some(net("172.19.0.0/16"))
        );
        // All of 172.16/12 taken: the 10.x pool, around a route and a nameserver.
        assert_eq!(
            pick(
                &POOLS,
                &taken(&["172.16.0.0/12", "10.0.0.0/24", "10.0.1.53/32"])
            ),
            Some(net("10.0.2.0/24"))
        );
        assert_eq!(pick(&POOLS, &taken(&["0.0.0.0/0"])), None);
    }

    #[test]
    fn proc_routes() {
        // The format of /proc/net/route: a default route and a connected /24 (192.0.2.0/24).
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_proc_routes(text);
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].net, net("192.0.2.0/24"));
        assert!(routes[0].what.contains("eth0"));
    }
}
