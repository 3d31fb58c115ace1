//! Isolation between two networks of one store holds while another store
//! sets up and tears down its own networks on the same host (root).
//!
//! netavark 1.4 deletes the shared `FORWARD -j NETAVARK_ISOLATION_1` jump
//! whenever a network loses its last container, whoever else still relies
//! on it; the store keeps a jump of its own there. This file has one test,
//! so no other test of this binary runs a netavark setup meanwhile, which
//! would put netavark's jump back and hide the failure.
#![cfg(feature = "net")]

mod netutil;

use std::process::Command;
use std::time::Duration;

use netutil::*;
use skiff_specs::net::{AttachRequest, NetError, NetworkRequest};

/// `stranger` (another network) must not reach `server`'s TCP port.
fn assert_isolated(stranger: &Container<'_>, server: &Container<'_>, port: u16, when: &str) {
    let got = tcp_get(
        Some(&stranger.path()),
        sock(server.ip(), port),
        Duration::from_secs(1),
    );
    assert!(
        got.is_err(),
        "{when}: a container of another network reached {}: {got:?}\nfilter FORWARD:\n{}",
        server.ip(),
        forward_rules().join("\n")
    );
}

/// The rules of the filter table's FORWARD chain, in order.
fn forward_rules() -> Vec<String> {
    let out = Command::new("iptables")
        .args(["-S", "FORWARD"])
        .output()
        .expect("iptables -S");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn isolation_survives_another_stores_setups_and_teardowns() {
    let a = Env::new();
    let n1 = a.network("iso1");
    let n2 = a.network("iso2");
    let mut traces = Traces::default();
    {
        let mut server = a.container("isoserver", &[(&n1, &[])], &[]);
        let mut peer = a.container("isopeer", &[(&n1, &[])], &[]);
        let mut stranger = a.container("isostranger", &[(&n2, &[])], &[]);
        traces.observe(&a, &[&n1, &n2]);
        let port = 7100;
        let listener = Server::tcp(Some(&server.path()), sock(server.ip(), port), "server");
        // The server answers on its own network: a refusal below is isolation.
        let seen = reach_tcp(Some(&peer.path()), sock(server.ip(), port));
        assert_eq!(seen, format!("server {}", peer.ip()));
        assert_isolated(&stranger, &server, port, "store A alone");

        let b = Env::new();
        let nb = b.network("isob");
        for round in 0..3 {
            let mut visitor = b.container(&format!("isob{round}"), &[(&nb, &[])], &[]);
            traces.observe(&b, &[&nb]);
            assert_isolated(
                &stranger,
                &server,
                port,
                &format!("store B's container {round} connected"),
            );
            // Its network's last container: netavark's complete teardown.
            visitor.stop().expect("disconnect store B's container");
            assert_isolated(
                &stranger,
                &server,
                port,
                &format!("store B's container {round} gone"),
            );
        }

        // A setup of store B that fails is rolled back by a teardown too.
        let failing = b.network("isofail");
        let bridge = failing.bridge.clone().expect("bridge");
        traces.observe(&b, &[&failing]);
        let squat = unique("skiso");
        // A veth squatting the bridge's name makes netavark's setup fail.
        ip(&[
            "link", "add", &bridge, "type", "veth", "peer", "name", &squat,
        ]);
        let squatter = HostLink(bridge);
        let ns = NsGuard::new(&b.run_dir, "isofailc");
        let req = AttachRequest {
            container_id: "isofailc".into(),
            container_name: "isofailc".into(),
            netns: ns.path(),
            networks: vec![NetworkRequest {
                network: "isofail".into(),
                ..Default::default()
            }],
            ports: vec![],
        };
        let err = b.nets.connect(&req).expect_err("setup must fail");
        assert!(
            matches!(err, NetError::Netavark { op: "setup", .. }),
            "{err}"
        );
        assert_isolated(&stranger, &server, port, "store B's failed setup");
        drop(squatter);
        ns.remove().expect("remove namespace");

        // Still one network: its own containers reach each other.
        let seen = reach_tcp(Some(&peer.path()), sock(server.ip(), port));
        assert_eq!(seen, format!("server {}", peer.ip()));
        drop(listener);
        b.nets.remove("isob").expect("remove isob");
        b.nets.remove("isofail").expect("remove isofail");
        stranger.stop().expect("stop stranger");
        peer.stop().expect("stop peer");
        server.stop().expect("stop server");
    }
    a.nets.remove("iso1").expect("remove iso1");
    a.nets.remove("iso2").expect("remove iso2");
    traces.assert_gone();

    // With the host lock held no netavark runs: netavark's shared filter
    // chains, and the jumps to them, are left only while some network (of
    // any store, or podman's) has rules in them.
    let _lock = host_lock();
    let lines = iptables_lines();
    let shared = [
        "NETAVARK_FORWARD",
        "NETAVARK_ISOLATION_1",
        "NETAVARK_ISOLATION_2",
    ];
    let busy = shared.iter().any(|c| {
        lines
            .iter()
            .any(|l| l.starts_with(&format!("filter: -A {c} ")))
    });
    if !busy {
        let left: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("filter: "))
            .filter(|l| shared.iter().any(|c| l.contains(c)))
            .collect();
        assert!(
            left.is_empty(),
            "idle shared chains or jumps left: {left:#?}"
        );
    }
}
