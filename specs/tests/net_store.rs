//! The network store and namespace files (root; no netavark run here).
#![cfg(feature = "net")]

mod netutil;

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;

use netutil::*;
use skiff_specs::net::{CreateOptions, Driver, Ipv4Net, NetError, Netns, Networks};

#[test]
fn names_lookups_errors_and_predefined_networks() {
    let env = Env::new();
    let labels = BTreeMap::from([("team".to_string(), "web".to_string())]);
    let front = env.network_with(
        "front",
        &CreateOptions {
            internal: true,
            labels: labels.clone(),
            ..CreateOptions::default()
        },
    );
    assert!(front.dns && front.internal && front.is_bridge());
    assert_eq!(front.labels, labels);
    assert_eq!(front.id.len(), 64);
    assert_eq!(
        front.bridge.as_deref(),
        Some(format!("sk-{}", &front.id[..12]).as_str())
    );
    let subnet = front.subnet.expect("subnet");
    assert_eq!(front.gateway, subnet.first_host());

    for key in ["front", front.id.as_str(), &front.id[..10]] {
        assert_eq!(env.nets.get(key).expect(key).id, front.id);
    }
    let err = env.nets.get("nope").expect_err("missing");
    assert!(matches!(err, NetError::NotFound(_)));
    assert_eq!(err.to_string(), "no such network: nope");
    assert!(matches!(
        env.nets.remove("nope"),
        Err(NetError::NotFound(_))
    ));

    let err = env
        .nets
        .create("front", &CreateOptions::default())
        .expect_err("dup");
    assert_eq!(err.to_string(), "network with name front already exists");
    for name in ["host", "none", "bridge"] {
        assert!(matches!(
            env.nets.create(name, &CreateOptions::default()),
            Err(NetError::Exists(_))
        ));
        let err = env.nets.remove(name).expect_err("predefined");
        assert_eq!(
            err.to_string(),
            format!("{name} is a pre-defined network and cannot be removed")
        );
    }
    assert!(matches!(
        env.nets.create("bad/name", &CreateOptions::default()),
        Err(NetError::InvalidName { .. })
    ));

    // The default network: made on first use, once, without DNS.
    let bridge = env.nets.default_network().expect("default");
    assert_eq!(bridge.name, "bridge");
    assert!(!bridge.dns && bridge.is_bridge());
    assert_eq!(env.nets.default_network().expect("again").id, bridge.id);
    assert_eq!(env.nets.get("bridge").expect("get").id, bridge.id);
    assert_eq!(env.nets.get("host").expect("host").driver, Driver::Host);
    assert_eq!(env.nets.get("none").expect("none").driver, Driver::Null);
    let names: Vec<String> = env
        .nets
        .list()
        .expect("list")
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["bridge", "front", "host", "none"]);

    // Another Networks on the same state dir sees the same networks.
    let again = Networks::open(env.nets.config().clone()).expect("reopen");
    assert_eq!(again.get("front").expect("front"), front);

    env.nets.remove("front").expect("remove");
    assert!(matches!(env.nets.get("front"), Err(NetError::NotFound(_))));
    assert!(!env
        .state_dir
        .join("networks")
        .join(format!("{}.json", front.id))
        .exists());
}

/// Non-default routes and addresses of the host, from /proc and getifaddrs.
fn host_nets() -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    let routes = fs::read_to_string("/proc/net/route").expect("routes");
    for line in routes.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hex = |s: &str| u32::from_str_radix(s, 16).expect("hex");
        let mask = u32::from_be_bytes(hex(f[7]).to_ne_bytes());
        if mask != 0 {
            out.push(Ipv4Net::containing(
                Ipv4Addr::from(hex(f[1]).to_ne_bytes()),
                mask.count_ones() as u8,
            ));
        }
    }
    for a in nix::ifaddrs::getifaddrs().expect("getifaddrs") {
        if let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            out.push(Ipv4Net::containing(ip.ip(), 32));
        }
    }
    out
}

#[test]
fn subnets_never_overlap_each_other_or_the_host() {
    let one = Env::new();
    let two = Env::new();
    let mut subnets: Vec<Ipv4Net> = Vec::new();
    for i in 0..3 {
        subnets.push(one.network(&format!("a{i}")).subnet.expect("subnet"));
        subnets.push(two.network(&format!("b{i}")).subnet.expect("subnet"));
    }
    let host = host_nets();
    for (i, s) in subnets.iter().enumerate() {
        for other in &subnets[i + 1..] {
            assert!(!s.overlaps(other), "{s} overlaps {other}");
        }
        for h in &host {
            assert!(!s.overlaps(h), "{s} overlaps the host's {h}");
        }
    }

    // An explicit subnet of another store's network, or of a host route, is refused.
    let theirs = two.nets.get("b0").expect("b0").subnet.expect("subnet");
    let err = one
        .nets
        .create(
            "clash",
            &CreateOptions {
                subnet: Some(theirs.to_string()),
                ..CreateOptions::default()
            },
        )
        .expect_err("overlap");
    assert!(matches!(err, NetError::SubnetOverlap { .. }), "{err}");
    assert!(err.to_string().contains("of the store"), "{err}");
    let mine = one.nets.get("a0").expect("a0").subnet.expect("subnet");
    let err = one
        .nets
        .create(
            "clash",
            &CreateOptions {
                subnet: Some(mine.to_string()),
                ..CreateOptions::default()
            },
        )
        .expect_err("overlap");
    assert!(err.to_string().contains("network a0"), "{err}");
    let primary = primary_ipv4();
    let around = Ipv4Net::containing(primary, 24);
    let err = one
        .nets
        .create(
            "clash",
            &CreateOptions {
                subnet: Some(around.to_string()),
                ..CreateOptions::default()
            },
        )
        .expect_err("host");
    assert!(err.to_string().contains("host"), "{err}");

    for (subnet, gateway, what) in [
        ("10.1.2.3/24", None, "host bits"),
        ("10.1.2.0/31", None, "/30"),
        ("nonsense", None, "ADDRESS/PREFIX"),
    ] {
        let err = one
            .nets
            .create(
                "bad",
                &CreateOptions {
                    subnet: Some(subnet.into()),
                    gateway,
                    ..CreateOptions::default()
                },
            )
            .expect_err(subnet);
        assert!(err.to_string().contains(what), "{err}");
    }
    // The gateway is checked before anything else about the subnet.
    let err = one
        .nets
        .create(
            "bad",
            &CreateOptions {
                subnet: Some("198.51.100.0/24".into()),
                gateway: Some(Ipv4Addr::new(1, 2, 3, 4)),
                ..CreateOptions::default()
            },
        )
        .expect_err("gateway");
    assert!(matches!(err, NetError::InvalidGateway { .. }), "{err}");
    // An explicit subnet outside the pools (documentation ranges, which no
    // other test uses; the second in case a concurrent run holds the first),
    // with a gateway of its own.
    let made = ["198.51.100.0/24", "203.0.113.0/24"]
        .iter()
        .find_map(|text| {
            let subnet: Ipv4Net = text.parse().expect("subnet");
            let gw = Ipv4Addr::from(u32::from(subnet.addr()) + 9);
            let opts = CreateOptions {
                subnet: Some(text.to_string()),
                gateway: Some(gw),
                ..CreateOptions::default()
            };
            match one.nets.create("explicit", &opts) {
                Ok(net) => Some((net, subnet, gw)),
                Err(NetError::SubnetOverlap { .. }) => None,
                Err(e) => panic!("{text}: {e}"),
            }
        });
    let (net, subnet, gw) = made.expect("a free documentation subnet");
    assert_eq!((net.subnet, net.gateway), (Some(subnet), Some(gw)));
    one.nets.remove("explicit").expect("remove");
}

#[test]
fn stores_creating_at_once_get_distinct_subnets() {
    let envs: Vec<Env> = (0..3).map(|_| Env::new()).collect();
    let subnets: Vec<Ipv4Net> = std::thread::scope(|s| {
        let handles: Vec<_> = envs
            .iter()
            .map(|env| {
                s.spawn(move || {
                    (0..3)
                        .map(|i| env.network(&format!("n{i}")).subnet.expect("subnet"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(subnets.len(), 9);
    for (i, s) in subnets.iter().enumerate() {
        for other in &subnets[i + 1..] {
            assert!(!s.overlaps(other), "{s} overlaps {other}");
        }
    }
}

fn own_netns_inode() -> u64 {
    fs::metadata("/proc/thread-self/ns/net").expect("ns").ino()
}

#[test]
fn netns_files() {
    let env = Env::new();
    let before = own_netns_inode();
    let ns = Netns::create(&env.run_dir, "nsfile").expect("create");
    let _cleanup = NsCleanup(ns.path.clone());
    assert_eq!(own_netns_inode(), before, "the caller's namespace changed");
    assert_eq!(ns.path, env.run_dir.join("netns").join("nsfile"));
    assert_ne!(fs::metadata(&ns.path).expect("stat").ino(), before);
    assert!(matches!(
        Netns::create(&env.run_dir, "nsfile"),
        Err(NetError::Netns { .. })
    ));
    assert_eq!(Netns::open(&env.run_dir, "nsfile"), Some(ns.clone()));
    assert_eq!(Netns::open(&env.run_dir, "other"), None);
    assert!(Netns::create(&env.run_dir, "../x").is_err());
    // lo is up inside, and only lo is there.
    let (lo_flags, names) = in_netns(Some(&ns.path), || {
        let flags = fs::read_to_string("/proc/thread-self/net/dev").expect("dev");
        let lo = nix::ifaddrs::getifaddrs()
            .expect("ifaddrs")
            .find(|a| a.interface_name == "lo")
            .map(|a| a.flags);
        (lo, flags)
    });
    let lo_flags = lo_flags.expect("lo");
    assert!(lo_flags.contains(nix::net::if_::InterfaceFlags::IFF_UP));
    let ifaces: Vec<&str> = names
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, vec!["lo"]);
    ns.remove().expect("remove");
    assert!(!env.run_dir.join("netns").join("nsfile").exists());
    assert_eq!(Netns::open(&env.run_dir, "nsfile"), None);
    // A stale plain file (a crash between create and mount) is replaced.
    fs::write(env.run_dir.join("netns").join("stale"), b"").expect("write");
    let ns = Netns::create(&env.run_dir, "stale").expect("over a stale file");
    let _cleanup2 = NsCleanup(ns.path.clone());
    ns.remove().expect("remove");
}
