//! Containers of one user network reach each other by address and by name
//! and alias (aardvark-dns); containers of another network cannot reach
//! them; the default network has no DNS (root).
#![cfg(feature = "net")]

mod netutil;

use std::net::IpAddr;
use std::time::Duration;

use netutil::*;
use skiff_specs::net::{hosts_file, resolv_conf};

#[test]
fn names_aliases_and_isolation() {
    let env = Env::new();
    let front = env.network("front");
    let back = env.network("back");
    let mut traces = Traces::default();
    {
        let web = env.container("dnsweb", &[(&front, &["www", "site"])], &[]);
        let client = env.container("dnsclient", &[(&front, &[])], &[]);
        let stranger = env.container("dnsstranger", &[(&back, &[])], &[]);
        traces.observe(&env, &[&front, &back]);
        let _server = Server::tcp(Some(&web.path()), sock(web.ip(), 7000), "web");

        // By address, from the same network.
        let answer = reach_tcp(Some(&client.path()), sock(web.ip(), 7000));
        assert_eq!(answer, format!("web {}", client.ip()));

        // By name, alias and short id, through aardvark-dns at the gateway.
        let dns = client.att().dns_servers.clone();
        assert_eq!(dns, vec![IpAddr::V4(client.gateway())]);
        assert_eq!(client.att().dns_search, vec!["dns.podman".to_string()]);
        for name in ["dnsweb-name", "www", "site", "dnsweb"] {
            let found = poll(&format!("DNS {name}"), || {
                dns_a(&client.path(), client.gateway(), name)
            });
            assert_eq!(found, vec![web.ip()], "{name}");
            let by_name = reach_tcp(Some(&client.path()), sock(found[0], 7000));
            assert!(by_name.starts_with("web "), "{by_name}");
        }
        let fqdn = poll("DNS www.dns.podman", || {
            dns_a(&client.path(), client.gateway(), "www.dns.podman")
        });
        assert_eq!(fqdn, vec![web.ip()]);

        // Another network: its gateway (the host) is reachable, the other
        // network's container is not (netavark's isolation rules drop it).
        let host_server = Server::tcp(None, sock(stranger.gateway(), 7001), "host");
        let seen = reach_tcp(Some(&stranger.path()), sock(stranger.gateway(), 7001));
        assert!(seen.starts_with("host "), "{seen}");
        drop(host_server);
        let blocked = tcp_get(
            Some(&stranger.path()),
            sock(web.ip(), 7000),
            Duration::from_secs(1),
        );
        assert!(
            blocked.is_err(),
            "a container of another network reached {}: {blocked:?}",
            web.ip()
        );
        let back_again = tcp_get(
            Some(&client.path()),
            sock(web.ip(), 7000),
            Duration::from_secs(2),
        );
        assert!(
            back_again.is_ok(),
            "same-network access broke: {back_again:?}"
        );

        // The container's files.
        let hosts = hosts_file("dnsweb", Some(web.att()), &[]);
        assert!(
            hosts.contains(&format!("{}\tdnsweb www site\n", web.ip())),
            "{hosts}"
        );
        let resolv = resolv_conf(Some(client.att()), std::slice::from_ref(&front), &[], &[])
            .expect("resolv");
        assert!(resolv.starts_with("search dns.podman"), "{resolv}");
        assert!(
            resolv.contains(&format!("nameserver {}\n", client.gateway())),
            "{resolv}"
        );
    }
    env.nets.remove("front").expect("remove");
    env.nets.remove("back").expect("remove");
    traces.assert_gone();
}

#[test]
fn default_bridge_has_no_dns() {
    let env = Env::new();
    let bridge = env.nets.default_network().expect("default");
    let mut traces = Traces::default();
    {
        let a = env.container("defa", &[(&bridge, &["alias"])], &[]);
        let b = env.container("defb", &[(&bridge, &[])], &[]);
        traces.observe(&env, &[&bridge]);
        assert!(a.att().dns_servers.is_empty());
        assert!(
            aardvark_pids(&env.run_dir).is_empty(),
            "aardvark-dns runs for the default network"
        );
        let _server = Server::tcp(Some(&a.path()), sock(a.ip(), 7002), "a");
        let answer = reach_tcp(Some(&b.path()), sock(a.ip(), 7002));
        assert_eq!(answer, format!("a {}", b.ip()));
        let resolv =
            resolv_conf(Some(b.att()), std::slice::from_ref(&bridge), &[], &[]).expect("resolv");
        assert!(!resolv.contains(&b.gateway().to_string()), "{resolv}");
        assert!(resolv.contains("nameserver "), "{resolv}");
        assert!(!resolv.contains("nameserver 127."), "{resolv}");
    }
    traces.assert_gone();
}
