//! `inspect`: containers (and volumes and networks) as docker's JSON, or
//! one value with `--format '{{.State.Status}}'`.

use anyhow::{bail, Result};
use clap::Args;
use serde_json::Value;

use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print one field: '{{.State.Status}}', '{{json .Config}}'
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Only this kind: container, volume or network
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Follows `.A.B.C` through `v`.
fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(v, |cur, key| cur.get(key))
}

/// A small part of Go templates: `{{.Path}}`, `{{json .Path}}`, with text around.
pub fn format(template: &str, v: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            bail!("template {template:?}: unclosed {{{{");
        };
        let expr = rest[start + 2..start + end].trim();
        let (json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let Some(path) = path.strip_prefix('.') else {
            bail!("template {template:?}: unsupported expression {expr:?}");
        };
        let value = field(v, path).cloned().unwrap_or(Value::Null);
        if json {
            out.push_str(&value.to_string());
        } else {
            match &value {
                Value::String(s) => out.push_str(s),
                Value::Null => out.push_str("<no value>"),
                other => out.push_str(&other.to_string()),
            }
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\n", "\n").replace("\\t", "\t"))
}

pub fn run(engine: &Engine, a: InspectArgs) -> Result<i32> {
    let mut out = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let kind = a.kind.as_deref();
        let found = (kind.is_none() || kind == Some("container"))
            .then(|| engine.containers.find(name).ok())
            .flatten()
            .map(|c| crate::inspect::container(engine, &c))
            .or_else(|| {
                (kind.is_none() || kind == Some("volume"))
                    .then(|| engine.volumes.get(name).ok())
                    .flatten()
                    .and_then(|v| serde_json::to_value(v).ok())
            })
            .or_else(|| {
                (kind.is_none() || kind == Some("network"))
                    .then(|| crate::lifecycle::networks(engine).ok()?.get(name).ok())
                    .flatten()
                    .and_then(|n| serde_json::to_value(super::network::docker_json(&n)).ok())
            });
        match found {
            Some(v) => out.push(v),
            None => {
                eprintln!("Error: No such object: {name}");
                failed = true;
            }
        }
    }
    match &a.format {
        Some(t) => {
            for v in &out {
                println!("{}", format(t, v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
    }
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() -> Result<()> {
        let v = serde_json::json!({"State": {"Status": "running", "Health": {"Status": "healthy"}}, "N": 3});
        assert_eq!(format("{{.State.Status}}", &v)?, "running");
        assert_eq!(format("{{.State.Health.Status}}/{{.N}}", &v)?, "healthy/3");
        assert_eq!(
            format("{{json .State.Health}}", &v)?,
            r#"{"Status":"healthy"}"#
        );
        assert_eq!(format("{{.Nope}}", &v)?, "<no value>");
        assert!(format("{{ .X", &v).is_err());
        Ok(())
    }
}
