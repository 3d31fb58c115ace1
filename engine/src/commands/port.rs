//! `port`: the container's published ports.

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;
use crate::lifecycle::attachment_ports;

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// Only this port: PORT[/PROTO]
    pub port: Option<String>,
}

pub fn run(engine: &Engine, a: PortArgs) -> Result<i32> {
    let c = engine.containers.find(&a.container)?;
    let want = a.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_owned()
        } else {
            format!("{p}/tcp")
        }
    });
    for m in attachment_ports(&c) {
        let key = format!("{}/{}", m.container_port, m.protocol);
        let ip = m
            .host_ip
            .map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string());
        match &want {
            Some(w) if *w == key => println!("{ip}:{}", m.host_port),
            Some(_) => {}
            None => println!("{key} -> {ip}:{}", m.host_port),
        }
    }
    Ok(0)
}
