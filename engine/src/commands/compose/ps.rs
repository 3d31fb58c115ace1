//! `ps`: the project's containers.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{ComposeArgs, SERVICE_LABEL};
use crate::container::status;
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all stopped containers
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format: table or json
    #[arg(long)]
    pub format: Option<String>,
    pub services: Vec<String>,
}

pub fn run(engine: &Engine, a: &ComposeArgs, p: &PsArgs) -> Result<i32> {
    let project = super::project(a, &p.services)?;
    let names = super::selected(&project, &p.services)?;
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for c in super::containers(engine, &project.name, false)? {
        let svc = c
            .config
            .labels
            .get(SERVICE_LABEL)
            .cloned()
            .unwrap_or_default();
        if !names.contains(&svc) {
            continue;
        }
        let st = status::current(&engine.containers.dir(&c.id));
        if !p.all && !status::is_running(&st) {
            continue;
        }
        let ports: Vec<String> = crate::lifecycle::attachment_ports(&c)
            .iter()
            .map(|m| {
                let ip = m
                    .host_ip
                    .map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string());
                format!("{ip}:{}->{}/{}", m.host_port, m.container_port, m.protocol)
            })
            .collect();
        rows.push(json!({
            "ID": c.id,
            "Name": c.name,
            "Image": c.image,
            "Service": svc,
            "Project": project.name,
            "State": st.status.as_str(),
            "Health": st.health.as_ref().map(|h| h.status.clone()).unwrap_or_default(),
            "ExitCode": st.exit_code,
            "Status": status::describe(&st, now),
            "Publishers": ports,
        }));
    }
    if p.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    if p.format.as_deref() == Some("json") {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(0);
    }
    println!(
        "{:<30} {:<25} {:<12} {:<40} PORTS",
        "NAME", "IMAGE", "SERVICE", "STATUS"
    );
    for r in &rows {
        let ports: Vec<String> = r["Publishers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{:<30} {:<25} {:<12} {:<40} {}",
            r["Name"].as_str().unwrap_or_default(),
            r["Image"].as_str().unwrap_or_default(),
            r["Service"].as_str().unwrap_or_default(),
            r["Status"].as_str().unwrap_or_default(),
            ports.join(", ")
        );
    }
    Ok(0)
}
