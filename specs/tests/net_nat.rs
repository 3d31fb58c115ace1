//! Outbound NAT: a container reaches the host's own address, and a machine
//! beyond the host (a namespace behind a veth with no route back to the
//! container's subnet) sees the host's address as the source: masquerade.
//! An internal network has no way out (root).
#![cfg(feature = "net")]

mod netutil;

use std::net::Ipv4Addr;
use std::time::Duration;

use netutil::*;
use skiff_specs::net::CreateOptions;

#[test]
fn masquerade_to_the_host_and_beyond() {
    let env = Env::new();
    let net = env.network("out");
    let internal = env.network_with(
        "closed",
        &CreateOptions {
            internal: true,
            ..CreateOptions::default()
        },
    );

    // "Beyond": a namespace on a /30 of 198.18.0.0/15 (the benchmarking range),
    // which knows only the host's end of its link.
    let pid = std::process::id();
    let base = Ipv4Addr::new(
        198,
        18 + ((pid >> 14) & 1) as u8,
        ((pid >> 6) & 0xff) as u8,
        ((pid & 0x3f) * 4) as u8,
    );
    let host_end = Ipv4Addr::from(u32::from(base) + 1);
    let far_end = Ipv4Addr::from(u32::from(base) + 2);
    let outside = NsGuard::new(&env.run_dir, "outside");
    let host_link = unique("skh");
    let far_link = unique("sko");
    in_netns(Some(&outside.path()), || {
        ip(&[
            "link", "add", &far_link, "type", "veth", "peer", "name", &host_link,
        ]);
        ip(&["link", "set", &host_link, "netns", &pid.to_string()]);
        ip(&["addr", "add", &format!("{far_end}/30"), "dev", &far_link]);
        ip(&["link", "set", &far_link, "up"]);
    });
    let _link = HostLink(host_link.clone());
    ip(&["addr", "add", &format!("{host_end}/30"), "dev", &host_link]);
    ip(&["link", "set", &host_link, "up"]);

    let mut traces = Traces::default();
    {
        let c = env.container("natc", &[(&net, &[])], &[]);
        let shut = env.container("natclosed", &[(&internal, &[])], &[]);
        traces.observe(&env, &[&net, &internal]);
        let far = Server::tcp(Some(&outside.path()), sock(far_end, 0), "far");
        let host = Server::tcp(None, sock(primary_ipv4(), 0), "host");

        let answer = reach_tcp(Some(&c.path()), far.addr);
        assert_eq!(answer, format!("far {host_end}"), "not masqueraded");
        let answer = reach_tcp(Some(&c.path()), host.addr);
        assert_eq!(answer, format!("host {}", c.ip()));

        // The internal network: no default route, so nothing beyond its subnet.
        let err = tcp_get(Some(&shut.path()), far.addr, Duration::from_secs(1));
        assert!(
            err.is_err(),
            "an internal network's container got out: {err:?}"
        );
        let err = tcp_get(Some(&shut.path()), host.addr, Duration::from_secs(1));
        assert!(
            err.is_err(),
            "an internal network's container got out: {err:?}"
        );
    }
    outside.remove().expect("netns");
    env.nets.remove("out").expect("remove");
    env.nets.remove("closed").expect("remove");
    traces.assert_gone();
}
