//! `skiff list`: the containers under --root, as a table, JSON or ids.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::GlobalOpts;
use crate::container;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct List {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,

    /// Print only the container ids
    #[arg(short, long)]
    pub quiet: bool,
}

impl List {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        let mut states = Vec::new();
        let entries = match std::fs::read_dir(&g.root) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", g.root.display())),
        };
        let mut ids: Vec<String> = entries
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| container::validate_id(n).is_ok())
            .collect();
        ids.sort();
        for id in ids {
            // A container deleted meanwhile is simply not listed.
            if let Ok(c) = container::load(&g.root, &id) {
                states.push(container::oci_state(&c));
            }
        }
        if self.quiet {
            for s in &states {
                println!("{}", s["id"].as_str().unwrap_or_default());
            }
            return Ok(());
        }
        match self.format {
            ListFormat::Json => {
                // runc prints `null` for no containers.
                if states.is_empty() {
                    println!("null");
                } else {
                    println!("{}", serde_json::to_string(&states)?);
                }
            }
            ListFormat::Table => print!("{}", table(&states)),
        }
        Ok(())
    }
}

fn table(states: &[serde_json::Value]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|s| {
            let f = |k: &str| match &s[k] {
                serde_json::Value::String(t) => t.clone(),
                v => v.to_string(),
            };
            ["id", "pid", "status", "bundle", "created", "owner"]
                .iter()
                .map(|k| f(k))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(w - c.len() + 3));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}
