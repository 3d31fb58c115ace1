//! `ps`: containers as a table, JSON lines or a Go-template-like format.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};
use skiff_specs::monitor::MonitorState;

use crate::container::status::{self, human_duration};
use crate::container::Container;
use crate::engine::Engine;
use crate::{ids, lifecycle, lock};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Filter output: name=, id=, status=, label=KEY[=VALUE], ancestor=, exited=, health=
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format: table (default), json, or a template like '{{.ID}} {{.Names}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show the latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Show the n last created containers
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
}

/// One row's fields, docker's names.
fn row(
    engine: &Engine,
    c: &Container,
    st: &MonitorState,
    now: DateTime<Utc>,
    trunc: bool,
) -> BTreeMap<&'static str, String> {
    let dir = engine.containers.dir(&c.id);
    let args: Vec<String> = std::fs::read(dir.bundle().join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["process"]["args"].as_array().cloned())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_else(|| {
            let mut v = c.config.entrypoint.clone().unwrap_or_default();
            v.extend(c.config.cmd.clone().unwrap_or_default());
            v
        });
    let mut command = args.join(" ");
    if trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let ports: Vec<String> = if status::is_running(st) {
        lifecycle::attachment_ports(c)
            .iter()
            .map(|m| {
                let ip = m
                    .host_ip
                    .map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string());
                format!("{ip}:{}->{}/{}", m.host_port, m.container_port, m.protocol)
            })
            .collect()
    } else {
        Vec::new()
    };
    let created = DateTime::parse_from_rfc3339(&c.created)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let mut r = BTreeMap::new();
    r.insert(
        "ID",
        if trunc {
            ids::short(&c.id).to_owned()
        } else {
            c.id.clone()
        },
    );
    r.insert("Image", c.image.clone());
    r.insert("Command", format!("\"{command}\""));
    r.insert(
        "CreatedAt",
        created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
    );
    r.insert(
        "RunningFor",
        format!("{} ago", human_duration(now - created)),
    );
    r.insert("Ports", ports.join(", "));
    r.insert("State", st.status.as_str().to_owned());
    r.insert("Status", status::describe(st, now));
    r.insert("Names", c.name.clone());
    r.insert(
        "Labels",
        c.config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    r.insert("Networks", c.host.network_mode.clone());
    r.insert(
        "Mounts",
        c.host
            .mounts
            .iter()
            .map(|m| {
                if m.source.is_empty() {
                    m.target.clone()
                } else {
                    m.source.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    );
    r
}

fn matches(c: &Container, st: &MonitorState, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => c.name.contains(v.as_str()),
        "id" => c.id.starts_with(v.as_str()),
        "status" => st.status.as_str() == v,
        "ancestor" => c.image == *v || c.image.starts_with(&format!("{v}:")) || c.image_id == *v,
        "exited" => {
            st.status == skiff_specs::monitor::Status::Exited && st.exit_code.to_string() == *v
        }
        "health" => st.health.as_ref().map_or("none", |h| h.status.as_str()) == v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.config.labels.get(lk).is_some_and(|x| x == lv),
            None => c.config.labels.contains_key(v.as_str()),
        },
        _ => false,
    })
}

/// `{{.ID}}\t{{.Names}}` with the row's fields; `table ` prefix prints a header.
fn render(template: &str, r: &BTreeMap<&'static str, String>) -> String {
    let mut out = template.replace("\\t", "\t");
    for (k, v) in r {
        out = out.replace(&format!("{{{{.{k}}}}}"), v);
    }
    out
}

pub fn run(engine: &Engine, a: PsArgs) -> Result<i32> {
    let mut filters = Vec::new();
    for f in &a.filter {
        let Some((k, v)) = f.split_once('=') else {
            bail!("invalid --filter value {f:?}: use KEY=VALUE");
        };
        if !matches!(
            k,
            "name" | "id" | "status" | "label" | "ancestor" | "exited" | "health"
        ) {
            bail!("invalid --filter value {f:?}: unknown filter {k:?}");
        }
        filters.push((k.to_owned(), v.to_owned()));
    }
    if let Ok(_l) = lock::engine(&engine.layout.locks()) {
        lifecycle::sweep_incomplete(engine);
    }
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut all = engine.containers.list()?;
    let limit = if a.latest { Some(1) } else { a.last };
    if let Some(n) = limit {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    for found in all.into_iter().rev() {
        // Bring exited containers up to date (their cleanup, --rm) first.
        let mut c = found;
        {
            let Ok(_lock) = lock::container(&engine.layout.locks(), &c.id) else {
                continue;
            };
            match lifecycle::refresh(engine, &mut c) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => tracing::warn!("{e:#}"),
            }
        }
        let st = status::current(&engine.containers.dir(&c.id));
        if !(a.all || limit.is_some() || status::is_running(&st)) {
            continue;
        }
        if !matches(&c, &st, &filters) {
            continue;
        }
        rows.push(row(engine, &c, &st, now, !a.no_trunc));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"]);
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for r in &rows {
                let obj: serde_json::Map<String, Value> =
                    r.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
                println!("{}", Value::Object(obj));
            }
        }
        Some(t) if t != "table" => {
            let (header, t) = match t.strip_prefix("table ") {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            if header {
                let names: BTreeMap<&'static str, String> = [
                    "ID",
                    "Image",
                    "Command",
                    "CreatedAt",
                    "RunningFor",
                    "Ports",
                    "State",
                    "Status",
                    "Names",
                    "Labels",
                    "Networks",
                    "Mounts",
                ]
                .iter()
                .map(|k| (*k, k.to_ascii_uppercase()))
                .collect();
                println!("{}", render(t, &names));
            }
            for r in &rows {
                println!("{}", render(t, r));
            }
        }
        _ => table(&rows),
    }
    Ok(0)
}

fn table(rows: &[BTreeMap<&'static str, String>]) {
    let cols = [
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    let widths: Vec<usize> = cols
        .iter()
        .map(|(h, k)| {
            rows.iter()
                .map(|r| r[k].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        println!("{}", s.trim_end());
    };
    line(cols.iter().map(|(h, _)| *h).collect());
    for r in rows {
        line(cols.iter().map(|(_, k)| r[k].as_str()).collect());
    }
}
