//! `skiff ps`: list the processes in a container's cgroup, as runc does:
//! `--format json` prints their host pids as a JSON array; the table is the
//! host's `ps` output (with PS_ARGS, default `-ef`) cut down to the header and
//! the lines whose PID column is one of the container's processes.

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use libcgroups::common::CgroupManager;
use libcontainer::config::YoukiConfig;
use libcontainer::container::ContainerStatus;

use crate::cli::GlobalOpts;
use crate::commands::kill::cgroup_manager;
use crate::container;
use crate::lock::ContainerLock;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct Ps {
    /// Output format: table (the host's ps output) or json (an array of host pids)
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Container id
    pub id: String,

    /// Arguments for the host's ps in table format (default -ef); their output must have a PID column
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS_ARGS"
    )]
    pub ps_args: Vec<String>,
}

impl Ps {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        let pids = self.pids(g)?;
        match self.format {
            Format::Json => {
                println!("{}", serde_json::to_string(&pids)?);
                Ok(())
            }
            Format::Table => {
                let args = if self.ps_args.is_empty() {
                    vec!["-ef".to_owned()]
                } else {
                    self.ps_args.clone()
                };
                let out = Command::new("ps")
                    .args(&args)
                    .output()
                    .context("cannot run ps")?;
                if !out.status.success() {
                    bail!(
                        "ps {} failed ({}): {}",
                        args.join(" "),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                print!(
                    "{}",
                    filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?
                );
                Ok(())
            }
        }
    }

    /// Host pids of every process in the container's cgroup, sorted.
    fn pids(&self, g: &GlobalOpts) -> Result<Vec<i32>> {
        container::validate_id(&self.id)?;
        let _lock = ContainerLock::acquire(&g.root, &self.id)?;
        let c = container::load(&g.root, &self.id)?;
        if c.status() == ContainerStatus::Stopped {
            bail!("cannot ps a container that has stopped");
        }
        let cfg = YoukiConfig::load(&c.root).context("cannot read container config")?;
        let manager = cgroup_manager(&c, &cfg.cgroup_path)?;
        let mut pids: Vec<i32> = manager
            .get_all_pids()
            .map_err(|e| anyhow::anyhow!("cannot list the container's processes: {e}"))?
            .into_iter()
            .map(|p| p.as_raw())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }
}

/// The header and the lines of `ps` output whose PID column is in `pids`.
fn filter_table(output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|t| t == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut table = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .with_context(|| format!("unable to parse pid {field:?} in ps output"))?;
        if pids.binary_search(&pid).is_ok() {
            table.push_str(line);
            table.push('\n');
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keeps_header_and_container_lines() -> Result<()> {
        let out = "UID  PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep 100\nroot 43 42 sh\n";
        assert_eq!(
            filter_table(out, &[42])?,
            "UID  PID PPID CMD\nroot 42 1 sleep 100\n"
        );
        assert!(filter_table("UID CMD\nroot x\n", &[1]).is_err());
        assert!(filter_table("PID CMD\nnope x\n", &[1]).is_err());
        Ok(())
    }
}
