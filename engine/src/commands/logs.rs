//! `logs`: a container's output from its json-file log.

use std::time::Duration;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use skiff_specs::jsonlog::{self, Follower};

use crate::container::status;
use crate::engine::Engine;
use crate::logs::{print, Waker};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (RFC 3339) or a relative time (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (RFC 3339) or a relative time (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// `2024-01-01T00:00:00Z`, a Unix time, or a duration before now (`10m`).
fn parse_time(value: &str, flag: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if let Some(t) = DateTime::from_timestamp(secs as i64, 0) {
            return Ok(t);
        }
    }
    if let Ok(ns) = crate::options::parse_duration_ns(value, flag) {
        return Ok(Utc::now() - chrono::Duration::nanoseconds(ns));
    }
    bail!("invalid {flag} value {value:?}: use RFC 3339, a Unix time or a duration like 10m")
}

pub fn run(engine: &Engine, a: LogsArgs) -> Result<i32> {
    let c = engine.containers.find(&a.container)?;
    let dir = engine.containers.dir(&c.id);
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time(s, "--since"))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time(s, "--until"))
        .transpose()?;
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail value {n:?}"))?,
        ),
    };
    let path = dir.log(&c.id);
    let max_file = c.host.log_max_file.max(1);
    // Start following before reading, so nothing written meanwhile is lost.
    let mut follower = Follower::new(&path, false);
    let keep = |e: &jsonlog::Entry| {
        let t = e.timestamp();
        since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && until.is_none_or(|u| t.is_some_and(|t| t <= u))
    };
    let mut entries: Vec<jsonlog::Entry> = jsonlog::read_all(&path, max_file)?
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    for e in &entries {
        print(e, a.timestamps)?;
    }
    if !a.follow {
        return Ok(0);
    }
    let waker = Waker::new(&dir);
    loop {
        for e in follower.poll()? {
            if keep(&e) {
                print(&e, a.timestamps)?;
            }
        }
        if !status::is_running(&status::current(&dir)) {
            for e in follower.poll()? {
                print(&e, a.timestamps)?;
            }
            return Ok(0);
        }
        waker.wait(Duration::from_millis(200));
    }
}
