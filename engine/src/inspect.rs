//! docker-shaped JSON for `inspect`: a container's State (with Health),
//! Config, HostConfig, Mounts and NetworkSettings.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use skiff_specs::monitor::Status;

use crate::container::record::MountKind;
use crate::container::{status, Container};
use crate::engine::Engine;

/// docker's zero time, for times that have not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(t: &str) -> &str {
    if t.is_empty() {
        ZERO_TIME
    } else {
        t
    }
}

pub fn container(engine: &Engine, c: &Container) -> Value {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    let spec: Value = std::fs::read(dir.bundle().join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let args: Vec<Value> = spec["process"]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (path, rest) = match args.split_first() {
        Some((p, r)) => (p.clone(), r.to_vec()),
        None => (json!(""), Vec::new()),
    };
    let health = st
        .health
        .as_ref()
        .map(|h| serde_json::to_value(h).unwrap_or(Value::Null));
    let mut state = json!({
        "Status": st.status.as_str(),
        "Running": matches!(st.status, Status::Running | Status::Paused | Status::Restarting),
        "Paused": st.status == Status::Paused,
        "Restarting": st.status == Status::Restarting,
        "OOMKilled": st.oom_killed,
        "Dead": false,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": or_zero(&st.started_at),
        "FinishedAt": or_zero(&st.finished_at),
    });
    if let Some(h) = health {
        state["Health"] = h;
    }

    let ports = crate::lifecycle::attachment_ports(c);
    let mut port_map: BTreeMap<String, Value> = c
        .config
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), Value::Null))
        .collect();
    for m in &ports {
        let key = format!("{}/{}", m.container_port, m.protocol);
        let entry = port_map.entry(key).or_insert_with(|| json!([]));
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({
                "HostIp": m.host_ip.map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string()),
                "HostPort": m.host_port.to_string(),
            }));
        }
    }
    let att = crate::lifecycle::attachment(c);
    let mut networks = serde_json::Map::new();
    let mut primary = json!({"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": ""});
    if let Some(a) = &att {
        for (i, iface) in a.interfaces.iter().enumerate() {
            let v = json!({
                "Aliases": iface.aliases,
                "NetworkID": iface.network,
                "EndpointID": format!("{}-{}", c.id, iface.interface_name),
                "Gateway": iface.gateway.to_string(),
                "IPAddress": iface.ip.to_string(),
                "IPPrefixLen": iface.prefix_len,
                "MacAddress": iface.mac,
            });
            if i == 0 {
                primary = v.clone();
            }
            networks.insert(iface.network.clone(), v);
        }
    } else if !matches!(c.host.network_mode.as_str(), "bridge") {
        networks.insert(c.host.network_mode.clone(), json!({"IPAddress": ""}));
    }
    let port_bindings: BTreeMap<String, Value> = c
        .host
        .publish
        .iter()
        .filter_map(|p| skiff_specs::net::parse_publish(p).ok())
        .flatten()
        .map(|m| {
            (
                format!("{}/{}", m.container_port, m.protocol),
                json!([{"HostIp": m.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                         "HostPort": if m.host_port == 0 { String::new() } else { m.host_port.to_string() }}]),
            )
        })
        .collect();
    let mounts: Vec<Value> = c
        .host
        .mounts
        .iter()
        .map(|m| {
            let source = match m.kind {
                MountKind::Volume => engine
                    .volumes
                    .get(&m.source)
                    .map(|v| v.mountpoint.display().to_string())
                    .unwrap_or_default(),
                _ => m.source.clone(),
            };
            let mut v = json!({
                "Type": m.kind.as_str(),
                "Source": source,
                "Destination": m.target,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": if m.kind == MountKind::Bind { "rprivate" } else { "" },
            });
            if m.kind == MountKind::Volume {
                v["Name"] = json!(m.source);
                v["Driver"] = json!("local");
            }
            v
        })
        .collect();
    let (restart_name, restart_max) = match &c.host.restart {
        skiff_specs::monitor::RestartPolicy::OnFailure { max } => ("on-failure", *max),
        p => (p.name(), 0),
    };
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": path,
        "Args": rest,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": dir.resolv_conf(),
        "HostnamePath": dir.hostname(),
        "HostsPath": dir.hosts(),
        "LogPath": dir.log(&c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": c.host.network_mode,
            "PortBindings": port_bindings,
            "PublishAllPorts": c.host.publish_all,
            "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": restart_max},
            "AutoRemove": c.host.auto_remove,
            "CapAdd": c.host.cap_add,
            "CapDrop": c.host.cap_drop,
            "Privileged": c.host.privileged,
            "ReadonlyRootfs": c.host.read_only,
            "Memory": c.host.memory,
            "MemoryReservation": c.host.memory_reservation,
            "MemorySwap": c.host.memory_swap,
            "NanoCpus": c.host.nano_cpus,
            "PidsLimit": c.host.pids_limit,
            "Ulimits": c.host.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Init": c.host.init,
            "ExtraHosts": c.host.extra_hosts,
            "Dns": c.host.dns,
            "DnsSearch": c.host.dns_search,
            "Sysctls": c.host.sysctls,
            "ShmSize": if c.host.shm_size > 0 { c.host.shm_size } else { 64 << 20 },
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"UpperDir": dir.upper(), "WorkDir": dir.work(), "MergedDir": dir.rootfs()},
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": c.config.hostname,
            "Domainname": c.config.domainname,
            "User": c.config.user.clone().unwrap_or_default(),
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "Env": spec["process"]["env"],
            "Cmd": c.config.cmd,
            "Entrypoint": c.config.entrypoint,
            "Healthcheck": c.config.healthcheck,
            "Image": c.image,
            "WorkingDir": c.config.working_dir.clone().unwrap_or_default(),
            "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
            "StopTimeout": c.config.stop_timeout,
            "ExposedPorts": c.config.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<String, Value>>(),
        },
        "NetworkSettings": {
            "SandboxKey": c.active.netns,
            "Ports": port_map,
            "IPAddress": primary["IPAddress"],
            "IPPrefixLen": primary["IPPrefixLen"],
            "Gateway": primary["Gateway"],
            "MacAddress": primary["MacAddress"],
            "Networks": networks,
        },
    })
}
