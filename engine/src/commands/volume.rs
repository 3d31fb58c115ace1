//! `volume create|ls|inspect|rm|prune`.

use anyhow::{bail, Result};
use clap::Subcommand;

use crate::container::record::MountKind;
use crate::engine::Engine;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create {
        /// Set metadata for a volume (KEY=VALUE)
        #[arg(long = "label")]
        label: Vec<String>,
        /// Volume driver (only local)
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
        /// The volume's name (generated when not given)
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        /// Accepted for docker's sake; volumes in use are never removed
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all volumes not used by any container
    Prune {
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
}

/// Containers that mount volume `name`.
fn users(engine: &Engine, name: &str) -> Result<Vec<String>> {
    Ok(engine
        .containers
        .list()?
        .into_iter()
        .filter(|c| {
            c.host
                .mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source == name)
        })
        .map(|c| c.id)
        .collect())
}

pub fn run(engine: &Engine, cmd: VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create {
            label,
            driver,
            name,
        } => {
            if driver != "local" {
                bail!("volume driver {driver:?} is not supported (only local)");
            }
            let labels = crate::options::key_values(&label, "--label")?;
            let name = match name {
                Some(n) => n,
                None => crate::ids::new_id()?,
            };
            let v = engine.volumes.create(&name, labels, false)?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls { quiet } => {
            let list = engine.volumes.list()?;
            if quiet {
                for v in list {
                    println!("{}", v.name);
                }
            } else {
                println!("{:<16}VOLUME NAME", "DRIVER");
                for v in list {
                    println!("{:<16}{}", v.driver, v.name);
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &names {
                match engine.volumes.get(n) {
                    Ok(v) => out.push(serde_json::to_value(v)?),
                    Err(e) => {
                        eprintln!("Error: {e:#}");
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(i32::from(failed))
        }
        VolumeCommand::Rm { force: _, names } => {
            let mut failed = false;
            for n in &names {
                let result = (|| -> Result<()> {
                    let _l = crate::lock::engine(&engine.layout.locks())?;
                    let u = users(engine, n)?;
                    if !u.is_empty() {
                        bail!("remove {n}: volume is in use - [{}]", u.join(", "));
                    }
                    engine.volumes.remove(n)
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
        VolumeCommand::Prune { force: _ } => {
            let _l = crate::lock::engine(&engine.layout.locks())?;
            println!("Deleted Volumes:");
            for v in engine.volumes.list()? {
                if users(engine, &v.name)?.is_empty() {
                    engine.volumes.remove(&v.name)?;
                    println!("{}", v.name);
                }
            }
            Ok(0)
        }
    }
}
