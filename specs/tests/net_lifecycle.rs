//! connect, disconnect and remove with real netavark, namespaces and
//! iptables: nothing is left behind, failures roll back, and teardown works
//! when the namespace is already gone (root).
#![cfg(feature = "net")]

mod netutil;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use netutil::*;
use skiff_specs::net::{AttachRequest, CreateOptions, NetError, NetworkRequest, Protocol};

#[test]
fn teardown_and_remove_leave_nothing() {
    let env = Env::new();
    let net = env.network("life");
    let other = env.network("life2");
    let mut traces = Traces::default();
    {
        let ports = [publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)];
        let mut a = env.container("lifea", &[(&net, &["alias-a"]), (&other, &[])], &ports);
        let mut b = env.container("lifeb", &[(&net, &[])], &[]);
        assert_eq!(a.att().interfaces.len(), 2);
        assert_eq!(a.att().interfaces[0].interface_name, "eth0");
        assert_eq!(a.att().interfaces[1].interface_name, "eth1");
        assert_eq!(a.att().ports, ports);
        assert!(!a.att().interfaces[0].mac.is_empty());
        assert_eq!(
            env.nets.attachments("lifea").expect("record"),
            vec![a.att().clone()]
        );
        traces.observe(&env, &[&net, &other]);
        assert!(
            !traces.chains.is_empty(),
            "no netavark chain seen: {traces:?}"
        );
        assert!(!traces.veths.is_empty(), "no veth seen: {traces:?}");
        assert!(
            traces.leftovers().len() > 2,
            "the checks see nothing: {traces:?}"
        );
        assert!(
            !aardvark_pids(&env.run_dir).is_empty(),
            "aardvark-dns is not running"
        );

        // A network in use cannot go.
        let err = env.nets.remove("life").expect_err("in use");
        assert_eq!(
            err.to_string(),
            format!(
                "error while removing network: network life id {} has active endpoints",
                net.id
            )
        );
        // Attaching a container twice to a network is refused.
        let again = AttachRequest {
            container_id: "lifeb".into(),
            container_name: "lifeb".into(),
            netns: b.path(),
            networks: vec![NetworkRequest {
                network: "life".into(),
                ..Default::default()
            }],
            ports: vec![],
        };
        assert!(matches!(
            env.nets.connect(&again),
            Err(NetError::AlreadyAttached { .. })
        ));

        let (att_a, path_a) = (a.att().clone(), a.path());
        b.stop().expect("stop b");
        a.stop().expect("stop a");
        // A second disconnect of the same attachment is a no-op.
        env.nets
            .disconnect(&att_a, &path_a)
            .expect("second disconnect");
    }
    env.nets.remove("life").expect("remove");
    env.nets.remove("life2").expect("remove");
    traces.assert_gone();
    assert!(fs::read_dir(env.state_dir.join("attachments"))
        .expect("dir")
        .next()
        .is_none());
    assert!(fs::read_dir(env.state_dir.join("ipam"))
        .expect("dir")
        .next()
        .is_none());
    // With the host-wide lock held no netavark runs: netavark's shared chains
    // may exist only while some network uses them.
    let _lock = host_lock();
    let lines = iptables_lines();
    if lines
        .iter()
        .any(|l| l == "filter: :NETAVARK_FORWARD - [0:0]")
    {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("filter: -A NETAVARK_FORWARD ")),
            "idle NETAVARK_FORWARD left: {lines:#?}"
        );
    }
}

#[test]
fn failed_setup_rolls_back_and_reports_netavarks_error() {
    let env = Env::new();
    let net = env.network("fail");
    let bridge = net.bridge.clone().expect("bridge");
    // A veth squatting the bridge's name makes netavark's setup fail.
    let squat = unique("skq");
    ip(&[
        "link", "add", &bridge, "type", "veth", "peer", "name", &squat,
    ]);
    let guard = HostLink(bridge.clone());
    let mut traces = Traces::default();
    traces.observe(&env, &[&net]);
    let ns = NsGuard::new(&env.run_dir, "failc");
    let req = AttachRequest {
        container_id: "failc".into(),
        container_name: "failc".into(),
        netns: ns.path(),
        networks: vec![NetworkRequest {
            network: "fail".into(),
            ..Default::default()
        }],
        ports: vec![publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)],
    };
    let err = env.nets.connect(&req).expect_err("setup must fail");
    let text = err.to_string();
    assert!(
        matches!(err, NetError::Netavark { op: "setup", .. }),
        "{text}"
    );
    assert!(
        text.contains(&bridge) && text.contains("already exists"),
        "{text}"
    );
    assert!(text.contains("failc"), "{text}");
    // Rolled back: no record, no address held (so the network can go), no
    // interface left in the namespace.
    assert!(!env.state_dir.join("attachments/failc.json").exists());
    let names = in_netns(Some(&ns.path()), || {
        nix::ifaddrs::getifaddrs()
            .expect("ifaddrs")
            .map(|a| a.interface_name)
            .collect::<BTreeSet<_>>()
    });
    assert_eq!(names, BTreeSet::from(["lo".to_string()]));
    drop(guard);
    // Without the squatter the same request works, with the address the
    // failed attempt had (the first one) given back.
    let first = Ipv4Addr::from(u32::from(net.subnet.expect("net").addr()) + 2);
    let mut retry = req.clone();
    retry.networks[0].static_ip = Some(first);
    let att = AttGuard::new(
        &env.nets,
        env.nets.connect(&retry).expect("connect"),
        ns.path(),
    );
    assert_eq!(att.att().interfaces[0].ip, first);
    att.disconnect().expect("disconnect");
    ns.remove().expect("netns");
    env.nets.remove("fail").expect("remove");
    traces.assert_gone();
}

#[test]
fn disconnect_after_the_namespace_is_gone() {
    let env = Env::new();
    let net = env.network("gone");
    let mut traces = Traces::default();
    let mut c = env.container(
        "gonec",
        &[(&net, &["x"])],
        &[publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)],
    );
    traces.observe(&env, &[&net]);
    let att = c.att.take().expect("att");
    let path = c.path();
    c.ns.take()
        .expect("ns")
        .remove()
        .expect("remove netns first");
    env.nets
        .disconnect(&att, &path)
        .expect("disconnect without the namespace");
    env.nets.remove("gone").expect("remove");
    traces.assert_gone();
}

/// As after a crash and a reboot, or someone's `ip link delete`: namespace
/// and bridge gone, the store still holding the attachment.
#[test]
fn disconnect_after_the_bridge_is_gone_too() {
    let env = Env::new();
    let net = env.network("lost");
    let mut traces = Traces::default();
    let mut c = env.container(
        "lostc",
        &[(&net, &[])],
        &[publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)],
    );
    traces.observe(&env, &[&net]);
    let att = c.att.take().expect("att");
    let path = c.path();
    c.ns.take().expect("ns").remove().expect("remove netns");
    ip(&["link", "delete", net.bridge.as_deref().expect("bridge")]);
    env.nets
        .disconnect(&att, &path)
        .expect("disconnect without namespace and bridge");
    env.nets.remove("lost").expect("remove");
    traces.assert_gone();
}

#[test]
fn parallel_connects_get_distinct_addresses() {
    let env = Env::new();
    let net = env.network("par");
    // A second Networks on the same store: its own lock file descriptions,
    // as another process would have.
    let other = skiff_specs::net::Networks::open(env.nets.config().clone()).expect("open");
    let ids: Vec<String> = (0..6).map(|i| format!("par{i}")).collect();
    let namespaces: Vec<NsGuard> = ids
        .iter()
        .map(|id| NsGuard::new(&env.run_dir, id))
        .collect();
    let atts = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .zip(&namespaces)
            .enumerate()
            .map(|(i, (id, ns))| {
                let store = if i % 2 == 0 { &env.nets } else { &other };
                s.spawn(move || {
                    store.connect(&AttachRequest {
                        container_id: id.clone(),
                        container_name: id.clone(),
                        netns: ns.path(),
                        networks: vec![NetworkRequest {
                            network: "par".into(),
                            ..Default::default()
                        }],
                        ports: vec![],
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect::<Vec<_>>()
    });
    let mut ips = BTreeSet::new();
    let mut errors = Vec::new();
    let mut guards = Vec::new();
    for (att, ns) in atts.into_iter().zip(&namespaces) {
        match att {
            Ok(att) => {
                ips.insert(att.interfaces[0].ip);
                guards.push(AttGuard::new(&env.nets, att, ns.path()));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    for g in guards {
        if let Err(e) = g.disconnect() {
            errors.push(e.to_string());
        }
    }
    for ns in namespaces {
        ns.remove().expect("netns");
    }
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ips.len(), 6, "{ips:?}");
    let _ = net;
}

#[test]
fn setup_and_teardown_cost() {
    let env = Env::new();
    let dns = env.network("cost");
    let plain = env.network_with(
        "costplain",
        &CreateOptions {
            dns: false,
            ..CreateOptions::default()
        },
    );
    for (net, ports) in [(&dns, true), (&plain, false)] {
        for i in 0..3 {
            let ports = if ports {
                vec![publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)]
            } else {
                vec![]
            };
            let ns = NsGuard::new(&env.run_dir, &format!("cost{i}"));
            let start = Instant::now();
            let att = env
                .nets
                .connect(&AttachRequest {
                    container_id: format!("cost{i}"),
                    container_name: format!("cost{i}"),
                    netns: ns.path(),
                    networks: vec![NetworkRequest {
                        network: net.name.clone(),
                        ..Default::default()
                    }],
                    ports,
                })
                .expect("connect");
            let att = AttGuard::new(&env.nets, att, ns.path());
            let connected = start.elapsed();
            att.disconnect().expect("disconnect");
            // Reported, not judged (the machine is shared).
            println!(
                "network {} (dns {}): connect {connected:?}, disconnect {:?}",
                net.name,
                net.dns,
                start.elapsed() - connected
            );
        }
    }
}

/// Readable sysctls under the given /proc/sys directories, recursively.
fn sysctls(roots: &[&str]) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(v) = fs::read_to_string(&path) {
                out.insert(path.display().to_string(), v.trim().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    for r in roots {
        walk(Path::new(r), &mut out);
    }
    out
}

/// The sysctls netavark 1.4 writes: ip_forward (which the kernel mirrors into
/// every conf/*/forwarding and which turns conf/all/accept_redirects off),
/// route_localnet on its bridges only. Everything else stays as it was.
#[test]
fn host_settings_netavark_touches() {
    let roots = [
        "/proc/sys/net/ipv4",
        "/proc/sys/net/ipv6/conf/all",
        "/proc/sys/net/ipv6/conf/default",
        "/proc/sys/net/bridge",
        "/proc/sys/net/core",
    ];
    let before = sysctls(&roots);
    let env = Env::new();
    let net = env.network("knobs");
    let bridge = net.bridge.clone().expect("bridge");
    {
        let c = env.container(
            "knobc",
            &[(&net, &[])],
            &[publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)],
        );
        let knob = |name: &str| {
            fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"))
                .expect("knob")
        };
        assert_eq!(knob(&bridge).trim(), "1", "route_localnet on the bridge");
        let veth = fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
            .expect("brif")
            .flatten()
            .next()
            .expect("a port")
            .file_name();
        assert_eq!(
            knob(&veth.to_string_lossy()).trim(),
            "0",
            "route_localnet on the veth"
        );
        assert_eq!(
            fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .expect("ip_forward")
                .trim(),
            "1"
        );
        drop(c);
    }
    env.nets.remove("knobs").expect("remove");
    let after = sysctls(&roots);
    let allowed = |key: &str| {
        key == "/proc/sys/net/ipv4/ip_forward"
            || (key.starts_with("/proc/sys/net/ipv4/conf/") && key.ends_with("/forwarding"))
            || key == "/proc/sys/net/ipv4/conf/all/accept_redirects"
            // Interfaces netavark makes for other tests running meanwhile.
            || key.starts_with("/proc/sys/net/ipv4/conf/sk-")
            || key.starts_with("/proc/sys/net/ipv4/conf/veth")
            // Counters and tables the kernel changes by itself.
            || key.contains("/neigh/")
            || key.starts_with("/proc/sys/net/ipv4/route/")
            || key.ends_with("/stable_secret")
    };
    let changed: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v) && !allowed(k))
        .map(|(k, v)| format!("{k}: {v} -> {}", after[k]))
        .collect();
    assert!(changed.is_empty(), "host settings changed: {changed:#?}");
}
