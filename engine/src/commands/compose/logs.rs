//! `logs`, and the attached output of `up`: every container's log lines
//! with a `service-N  | ` prefix (coloured on a terminal), followed until
//! the containers stop or Ctrl-C.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use skiff_specs::jsonlog::{self, Entry, Follower};

use super::{ComposeArgs, NUMBER_LABEL, SERVICE_LABEL};
use crate::container::{status, Container};
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Don't print the prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    pub services: Vec<String>,
}

/// What following ended with.
pub struct Followed {
    pub exit: i32,
    /// The user pressed Ctrl-C or a container exited with --abort-on-container-exit.
    pub stop_all: bool,
}

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

struct Stream {
    prefix: String,
    follower: Follower,
    container: Container,
}

fn prefix(c: &Container, width: usize, color: Option<&str>) -> String {
    let svc = c
        .config
        .labels
        .get(SERVICE_LABEL)
        .cloned()
        .unwrap_or_else(|| c.name.clone());
    let n = c
        .config
        .labels
        .get(NUMBER_LABEL)
        .cloned()
        .unwrap_or_else(|| "1".to_owned());
    let label = format!("{svc}-{n}");
    let padded = format!("{label:<width$}  | ");
    match color {
        Some(code) => format!("\x1b[{code}m{padded}\x1b[0m"),
        None => padded,
    }
}

fn label_width(containers: &[Container]) -> usize {
    containers
        .iter()
        .map(|c| {
            let svc = c
                .config
                .labels
                .get(SERVICE_LABEL)
                .map_or(c.name.len(), String::len);
            svc + 1 + c.config.labels.get(NUMBER_LABEL).map_or(1, String::len)
        })
        .max()
        .unwrap_or(0)
}

fn print(prefix: &str, e: &Entry, timestamps: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let text = e.log.strip_suffix('\n').unwrap_or(&e.log);
    if timestamps {
        writeln!(out, "{prefix}{} {text}", e.time)?;
    } else {
        writeln!(out, "{prefix}{text}")?;
    }
    out.flush()
}

fn streams(engine: &Engine, containers: &[Container], from_start: bool) -> Vec<Stream> {
    let color = std::io::stdout().is_terminal();
    let width = label_width(containers);
    containers
        .iter()
        .enumerate()
        .map(|(i, c)| Stream {
            prefix: prefix(c, width, color.then(|| COLORS[i % COLORS.len()])),
            follower: Follower::new(&engine.containers.dir(&c.id).log(&c.id), from_start),
            container: c.clone(),
        })
        .collect()
}

/// Follows `containers`' logs from their start until all have stopped,
/// Ctrl-C, or (with `abort`) the first exit.
pub fn follow(
    engine: &Engine,
    containers: &[Container],
    abort: bool,
    exit_from: Option<&str>,
) -> Result<Followed> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores into an atomic.
    unsafe {
        let _ = sigaction(Signal::SIGINT, &action);
        let _ = sigaction(Signal::SIGTERM, &action);
    }
    let mut streams = streams(engine, containers, true);
    loop {
        for s in streams.iter_mut() {
            for e in s.follower.poll()? {
                print(&s.prefix, &e, false)?;
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Ok(Followed {
                exit: 130,
                stop_all: true,
            });
        }
        let mut all_done = true;
        for s in &streams {
            let st = status::current(&engine.containers.dir(&s.container.id));
            if status::is_running(&st) {
                all_done = false;
                continue;
            }
            let svc = s
                .container
                .config
                .labels
                .get(SERVICE_LABEL)
                .map(String::as_str);
            if abort && (exit_from.is_none() || exit_from == svc) {
                eprintln!("{} exited with code {}", s.container.name, st.exit_code);
                return Ok(Followed {
                    exit: st.exit_code,
                    stop_all: true,
                });
            }
        }
        if all_done {
            for s in streams.iter_mut() {
                for e in s.follower.poll()? {
                    print(&s.prefix, &e, false)?;
                }
            }
            let exit = match exit_from {
                Some(svc) => streams
                    .iter()
                    .find(|s| {
                        s.container
                            .config
                            .labels
                            .get(SERVICE_LABEL)
                            .is_some_and(|x| x == svc)
                    })
                    .map(|s| status::current(&engine.containers.dir(&s.container.id)).exit_code)
                    .unwrap_or(0),
                None => 0,
            };
            return Ok(Followed {
                exit,
                stop_all: false,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run(engine: &Engine, a: &ComposeArgs, l: &LogsArgs) -> Result<i32> {
    let project = super::project(a, &l.services)?;
    let names = super::selected(&project, &l.services)?;
    let mut containers = Vec::new();
    for n in &names {
        containers.extend(
            super::service_containers(engine, &project.name, n)?
                .into_iter()
                .map(|(_, c)| c),
        );
    }
    let tail: Option<usize> = match l.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail value {n:?}"))?,
        ),
    };
    let mut streams = streams(engine, &containers, false);
    if l.no_log_prefix {
        for s in streams.iter_mut() {
            s.prefix.clear();
        }
    }
    for s in &streams {
        let c = &s.container;
        let mut entries = jsonlog::read_all(
            &engine.containers.dir(&c.id).log(&c.id),
            c.host.log_max_file.max(1),
        )?;
        if let Some(n) = tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        for e in &entries {
            print(&s.prefix, e, l.timestamps)?;
        }
    }
    if !l.follow {
        return Ok(0);
    }
    loop {
        let mut any_running = false;
        for s in streams.iter_mut() {
            for e in s.follower.poll()? {
                print(&s.prefix, &e, l.timestamps)?;
            }
            any_running |=
                status::is_running(&status::current(&engine.containers.dir(&s.container.id)));
        }
        if !any_running {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
