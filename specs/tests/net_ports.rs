//! Published ports: reachable from the host on 127.0.0.1 and its primary
//! address, from the container itself through the host address (hairpin),
//! over UDP; ports in use are refused before anything is set up (root).
#![cfg(feature = "net")]

mod netutil;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};

use netutil::*;
use skiff_specs::net::{parse_publish, AttachRequest, NetError, NetworkRequest, Protocol};

#[test]
fn published_ports_host_hairpin_and_udp() {
    let env = Env::new();
    let net = env.network("pub");
    let host = primary_ipv4();
    let tcp_port = free_port(Protocol::Tcp);
    let udp_port = free_port(Protocol::Udp);
    let mut ports = parse_publish(&format!("{tcp_port}:80")).expect("-p");
    ports.extend(parse_publish(&format!("{udp_port}:5353/udp")).expect("-p"));
    ports.extend(parse_publish("81").expect("-p")); // a free host port is picked
    let mut traces = Traces::default();
    {
        let c = env.container("pubc", &[(&net, &[])], &ports);
        traces.observe(&env, &[&net]);
        let picked = c.att().ports[2];
        assert_ne!(picked.host_port, 0);
        assert_eq!(picked.container_port, 81);
        assert_eq!(&c.att().ports[..2], &ports[..2]);
        let _tcp = Server::tcp(Some(&c.path()), sock(Ipv4Addr::UNSPECIFIED, 80), "tcp80");
        let _tcp81 = Server::tcp(Some(&c.path()), sock(Ipv4Addr::UNSPECIFIED, 81), "tcp81");
        let _udp = Server::udp(Some(&c.path()), sock(Ipv4Addr::UNSPECIFIED, 5353), "udp");

        // From the host, on loopback and on its own address. Connections from
        // 127.0.0.1 are masqueraded to the gateway, as netavark does.
        let answer = reach_tcp(None, sock(Ipv4Addr::LOCALHOST, tcp_port));
        assert_eq!(answer, format!("tcp80 {}", c.gateway()));
        let answer = reach_tcp(None, sock(host, tcp_port));
        assert!(answer.starts_with("tcp80 "), "{answer}");
        let answer = reach_tcp(None, sock(host, picked.host_port));
        assert!(answer.starts_with("tcp81 "), "{answer}");
        // Hairpin: the container to its own published port through the host.
        let answer = reach_tcp(Some(&c.path()), sock(host, tcp_port));
        assert!(answer.starts_with("tcp80 "), "{answer}");
        let answer = reach_tcp(Some(&c.path()), sock(c.gateway(), tcp_port));
        assert!(answer.starts_with("tcp80 "), "{answer}");
        // UDP.
        let answer = reach_udp(None, sock(Ipv4Addr::LOCALHOST, udp_port));
        assert!(answer.starts_with("udp "), "{answer}");
        let answer = reach_udp(None, sock(host, udp_port));
        assert!(answer.starts_with("udp "), "{answer}");
    }
    env.nets.remove("pub").expect("remove");
    traces.assert_gone();
}

#[test]
fn ports_in_use_are_refused_before_anything_is_made() {
    let env = Env::new();
    let net = env.network("busy");
    let port = free_port(Protocol::Tcp);
    let mapping = publish(port, 80, Protocol::Tcp);
    let mut traces = Traces::default();
    {
        let first = env.container("busy1", &[(&net, &[])], &[mapping]);
        traces.observe(&env, &[&net]);
        let veths_before = traces.veths.clone();

        // The same host port again (any address): refused, nothing made.
        let err = env.nets.check_ports_free(&[mapping]).expect_err("taken");
        assert!(err.is_port_allocated(), "{err}");
        assert!(
            err.to_string().starts_with(&format!(
                "Bind for 0.0.0.0:{port} failed: port is already allocated"
            )),
            "{err}"
        );
        assert!(err.to_string().contains("busy1"), "{err}");
        let on_loopback = skiff_specs::net::PortMapping {
            host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..mapping
        };
        assert!(env.nets.check_ports_free(&[on_loopback]).is_err());
        // UDP on the same number is a different port.
        env.nets
            .check_ports_free(&[publish(port, 80, Protocol::Udp)])
            .expect("udp is free");

        let ns = NsGuard::new(&env.run_dir, "busy2");
        let req = AttachRequest {
            container_id: "busy2".into(),
            container_name: "busy2".into(),
            netns: ns.path(),
            networks: vec![NetworkRequest {
                network: "busy".into(),
                ..Default::default()
            }],
            ports: vec![on_loopback],
        };
        let err = env.nets.connect(&req).expect_err("taken");
        assert!(err.is_port_allocated(), "{err}");
        let inside = in_netns(Some(&ns.path()), || {
            nix::ifaddrs::getifaddrs()
                .expect("ifaddrs")
                .map(|a| a.interface_name)
                .collect::<BTreeSet<_>>()
        });
        assert_eq!(inside, BTreeSet::from(["lo".to_string()]));
        assert!(!env.state_dir.join("attachments/busy2.json").exists());
        let mut now = Traces::default();
        now.observe(&env, &[&net]);
        assert_eq!(
            now.veths, veths_before,
            "a veth was made for a refused request"
        );

        // A port a host process holds (TCP and UDP), and one published by
        // another store's netavark (seen in iptables).
        let holder = TcpListener::bind("0.0.0.0:0").expect("bind");
        let held = holder.local_addr().expect("addr").port();
        let err = env
            .nets
            .check_ports_free(&[publish(held, 80, Protocol::Tcp)])
            .expect_err("held");
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        assert!(err.to_string().contains("host process"), "{err}");
        let mut refused = req.clone();
        refused.ports = vec![publish(held, 80, Protocol::Tcp)];
        assert!(env
            .nets
            .connect(&refused)
            .expect_err("held")
            .is_port_allocated());
        let udp_holder = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let udp_held = udp_holder.local_addr().expect("addr").port();
        assert!(env
            .nets
            .check_ports_free(&[publish(udp_held, 53, Protocol::Udp)])
            .is_err());
        let other_store = Env::new();
        let err = other_store
            .nets
            .check_ports_free(&[mapping])
            .expect_err("forwarded");
        assert!(err.to_string().contains("netavark port forward"), "{err}");

        // Two mappings of one request on one port.
        let err = env
            .nets
            .check_ports_free(&[mapping, mapping])
            .expect_err("dup");
        assert!(err.is_port_allocated());

        // A free port passes; the refused container can attach without ports.
        env.nets
            .check_ports_free(&[publish(free_port(Protocol::Tcp), 80, Protocol::Tcp)])
            .expect("free");
        let mut plain = req.clone();
        plain.ports.clear();
        let att = AttGuard::new(
            &env.nets,
            env.nets.connect(&plain).expect("connect"),
            ns.path(),
        );
        att.disconnect().expect("disconnect");
        ns.remove().expect("netns");
        drop(first);
        // Released with its container.
        env.nets.check_ports_free(&[mapping]).expect("free again");
    }
    env.nets.remove("busy").expect("remove");
    traces.assert_gone();
    assert!(matches!(
        parse_publish("8080:80/tcp,udp"),
        Err(NetError::InvalidPublish { .. })
    ));
}
