//! Instructions that change only the image config (no filesystem step): LABEL, EXPOSE,
//! VOLUME, USER, SHELL, STOPSIGNAL, MAINTAINER, ONBUILD, HEALTHCHECK, CMD and ENTRYPOINT
//! (which drops a CMD inherited from the base).

use std::collections::BTreeMap;

use skiff_specs::config::Empty;

use super::StageState;
use crate::error::{BuildError, Result};
use crate::frontend::{parse_signal, CommandLine, Healthcheck, Instruction, PortSpec};

/// Applies `inst` (expanded) to the stage's config; false when it is not a config-only
/// instruction.
pub fn apply(state: &mut StageState, inst: &Instruction, step: &str) -> Result<bool> {
    let config = &mut state.config;
    match inst {
        Instruction::Label(pairs) => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for kv in pairs {
                labels.insert(kv.key.clone(), kv.value.clone());
            }
        }
        Instruction::Expose(ports) => {
            let map = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                let spec = PortSpec::parse(p).map_err(|e| BuildError::step(step, e))?;
                for k in spec.keys() {
                    map.insert(k, Empty {});
                }
            }
        }
        Instruction::Volume(paths) => {
            let map = config.volumes.get_or_insert_with(BTreeMap::new);
            for p in paths {
                map.insert(p.clone(), Empty {});
            }
        }
        Instruction::User(u) => config.user = Some(u.clone()),
        Instruction::Shell(argv) => {
            state.shell = argv.clone();
            config.shell = Some(argv.clone());
        }
        Instruction::StopSignal(s) => {
            parse_signal(s).map_err(|e| BuildError::step(step, e))?;
            config.stop_signal = Some(s.clone());
        }
        Instruction::Maintainer(m) => state.author = Some(m.clone()),
        Instruction::Onbuild(o) => config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(o.expression.clone()),
        Instruction::Healthcheck(h) => {
            let ns = |d: Option<std::time::Duration>| {
                d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            };
            config.healthcheck = Some(match h {
                Healthcheck::None => skiff_specs::Healthcheck {
                    test: Some(vec!["NONE".to_owned()]),
                    ..Default::default()
                },
                Healthcheck::Check(c) => skiff_specs::Healthcheck {
                    test: Some(c.test()),
                    interval: ns(c.interval),
                    timeout: ns(c.timeout),
                    start_period: ns(c.start_period),
                    start_interval: ns(c.start_interval),
                    retries: c.retries.map(i64::from),
                },
            });
        }
        Instruction::Cmd(c) => {
            config.cmd = Some(command_argv(c, &state.shell));
            state.cmd_set = true;
        }
        Instruction::Entrypoint(c) => {
            config.entrypoint = Some(command_argv(c, &state.shell));
            if !state.cmd_set {
                config.cmd = None;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// CMD/ENTRYPOINT as the config stores them: exec form as is, shell form through SHELL.
fn command_argv(c: &CommandLine, shell: &[String]) -> Vec<String> {
    match c {
        CommandLine::Exec(argv) => argv.clone(),
        CommandLine::Shell(line) => {
            let mut a = shell.to_vec();
            a.push(line.clone());
            a
        }
    }
}
