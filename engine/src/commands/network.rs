//! `network create|ls|inspect|rm|prune|connect|disconnect`.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use skiff_specs::net::{CreateOptions, Driver, Network};

use crate::container::record::NetworkEndpoint;
use crate::container::status;
use crate::engine::Engine;
use crate::lifecycle::networks;
use crate::lock;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create {
        /// Driver to manage the network (only bridge)
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format (chosen automatically when not given)
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 gateway for the subnet
        #[arg(long)]
        gateway: Option<String>,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Set metadata on a network (KEY=VALUE)
        #[arg(long = "label")]
        label: Vec<String>,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network names
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all networks not used by any container
    Prune {
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Connect a container to a network (takes effect when it next starts)
    Connect {
        /// Add a network-scoped alias for the container
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network (takes effect when it next starts)
    Disconnect { network: String, container: String },
}

/// docker's driver names.
fn driver_name(n: &Network) -> &'static str {
    match n.driver {
        Driver::Bridge => "bridge",
        Driver::Host => "host",
        Driver::Null => "null",
    }
}

/// docker's network JSON.
pub fn docker_json(n: &Network) -> Value {
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": driver_name(n),
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Config": match (&n.subnet, n.gateway) {
            (Some(s), Some(g)) => json!([{"Subnet": s.to_string(), "Gateway": g.to_string()}]),
            _ => json!([]),
        }},
        "Internal": n.internal,
        "Labels": n.labels,
        "Options": match &n.bridge {
            Some(b) => json!({"com.docker.network.bridge.name": b}),
            None => json!({}),
        },
    })
}

/// Containers (ids) that join network `name`.
fn users(engine: &Engine, name: &str) -> Result<Vec<String>> {
    Ok(engine
        .containers
        .list()?
        .into_iter()
        .filter(|c| {
            c.host.network_mode == name || c.host.networks.iter().any(|n| n.network == name)
        })
        .map(|c| c.id)
        .collect())
}

const BUILTIN: [&str; 3] = ["bridge", "host", "none"];

pub fn run(engine: &Engine, cmd: NetworkCommand) -> Result<i32> {
    match cmd {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            internal,
            label,
            name,
        } => {
            if driver != "bridge" {
                bail!("network driver {driver:?} is not supported (only bridge)");
            }
            if BUILTIN.contains(&name.as_str()) {
                bail!("network with name {name} already exists");
            }
            let labels = crate::options::key_values(&label, "--label")?;
            let gateway = gateway
                .map(|g| {
                    g.parse()
                        .map_err(|_| anyhow::anyhow!("invalid --gateway value {g:?}"))
                })
                .transpose()?;
            let _l = lock::engine(&engine.layout.locks())?;
            let n = networks(engine)?.create(
                &name,
                &CreateOptions {
                    subnet,
                    gateway,
                    internal,
                    labels,
                    dns: true,
                },
            )?;
            println!("{}", n.id);
            Ok(0)
        }
        NetworkCommand::Ls { quiet } => {
            let list = networks(engine)?.list()?;
            if quiet {
                for n in &list {
                    println!("{}", n.name);
                }
            } else {
                println!("{:<14}{:<24}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
                for n in &list {
                    println!(
                        "{:<14}{:<24}{:<10}local",
                        n.short_id(),
                        n.name,
                        driver_name(n)
                    );
                }
            }
            Ok(0)
        }
        NetworkCommand::Inspect { names } => {
            let nets = networks(engine)?;
            let mut out = Vec::new();
            let mut failed = false;
            for n in &names {
                match nets.get(n) {
                    Ok(net) => out.push(docker_json(&net)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(i32::from(failed))
        }
        NetworkCommand::Rm { names } => {
            let nets = networks(engine)?;
            let mut failed = false;
            for n in &names {
                let result = (|| -> Result<()> {
                    let _l = lock::engine(&engine.layout.locks())?;
                    let net = nets.get(n)?;
                    let u = users(engine, &net.name)?;
                    if !u.is_empty() {
                        bail!("error while removing network: network {n} has active endpoints");
                    }
                    Ok(nets.remove(&net.name)?)
                })();
                match result {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e:#}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        NetworkCommand::Prune { force: _ } => {
            let nets = networks(engine)?;
            let _l = lock::engine(&engine.layout.locks())?;
            println!("Deleted Networks:");
            for n in nets.list()? {
                if BUILTIN.contains(&n.name.as_str()) || !users(engine, &n.name)?.is_empty() {
                    continue;
                }
                if nets.remove(&n.name).is_ok() {
                    println!("{}", n.name);
                }
            }
            Ok(0)
        }
        NetworkCommand::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let net = networks(engine)?.get(&network)?;
            let found = engine.containers.find(&container)?;
            let _l = lock::container(&engine.layout.locks(), &found.id)?;
            let mut c = engine.containers.load(&found.id)?;
            if status::is_running(&status::current(&engine.containers.dir(&c.id))) {
                bail!("connecting a running container is not supported yet: stop it, connect, start it");
            }
            if matches!(c.host.network_mode.as_str(), "host" | "none") {
                bail!(
                    "container {} uses --network {}: it cannot join other networks",
                    c.name,
                    c.host.network_mode
                );
            }
            if c.host.networks.is_empty() {
                c.host.networks.push(NetworkEndpoint {
                    network: c.host.network_mode.clone(),
                    ..Default::default()
                });
            }
            if c.host.networks.iter().any(|e| e.network == net.name) {
                bail!(
                    "container {} is already connected to network {}",
                    c.name,
                    net.name
                );
            }
            c.host.networks.push(NetworkEndpoint {
                network: net.name,
                aliases: alias,
                ipv4_address: ip,
            });
            engine.containers.save(&c)?;
            Ok(0)
        }
        NetworkCommand::Disconnect { network, container } => {
            let found = engine.containers.find(&container)?;
            let _l = lock::container(&engine.layout.locks(), &found.id)?;
            let mut c = engine.containers.load(&found.id)?;
            if status::is_running(&status::current(&engine.containers.dir(&c.id))) {
                bail!("disconnecting a running container is not supported yet: stop it first");
            }
            let before = c.host.networks.len();
            c.host.networks.retain(|e| e.network != network);
            if c.host.networks.len() == before && c.host.network_mode != network {
                bail!("container {} is not connected to network {network}", c.name);
            }
            if c.host.network_mode == network {
                c.host.network_mode = c
                    .host
                    .networks
                    .first()
                    .map_or_else(|| "none".to_owned(), |e| e.network.clone());
            }
            engine.containers.save(&c)?;
            Ok(0)
        }
    }
}
