//! `top`: the container's processes as the host's `ps` shows them.

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::container::status;
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(engine: &Engine, a: TopArgs) -> Result<i32> {
    let c = engine.containers.find(&a.container)?;
    let dir = engine.containers.dir(&c.id);
    if !status::is_running(&status::current(&dir)) {
        bail!("Container {} is not running", c.id);
    }
    let pids = engine.monitor.connect(&dir.bundle(), &c.id)?.pids()?;
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        a.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .context("cannot run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(pid_col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {}: no PID column", args.join(" "));
    };
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
