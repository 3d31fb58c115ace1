//! Log records in runc's two formats. containerd's runc shim and podman pass
//! `--log FILE --log-format json` and read `msg` of the last error record when a
//! command fails, so the JSON shape is `{"level":..,"msg":..,"time":..}`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cli::{GlobalOpts, LogFormat};

/// Where records go, and in which format.
#[derive(Clone)]
pub struct LogSink {
    out: Arc<Mutex<Option<File>>>,
    format: LogFormat,
}

impl LogSink {
    pub fn is_stderr(&self) -> bool {
        self.out.lock().map(|f| f.is_none()).unwrap_or(true)
    }

    /// Writes one record; failures to log are ignored, as there is nowhere left to report them.
    pub fn write_record(&self, level: &str, msg: &str) {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = match self.format {
            LogFormat::Json => {
                let rec = serde_json::json!({ "level": level, "msg": msg, "time": time });
                format!("{rec}\n")
            }
            LogFormat::Text => {
                let quoted = serde_json::Value::String(msg.to_owned());
                format!("time=\"{time}\" level={level} msg={quoted}\n")
            }
        };
        let Ok(mut out) = self.out.lock() else { return };
        match out.as_mut() {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

/// Sets up the global subscriber. Returns the sink so fatal errors reach the same place.
pub fn init(opts: &GlobalOpts) -> Option<LogSink> {
    let file = match &opts.log {
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Some(f),
            Err(err) => {
                eprintln!("skiff: cannot open log file {}: {err}", path.display());
                None
            }
        },
        None => None,
    };
    let sink = LogSink {
        out: Arc::new(Mutex::new(file)),
        format: opts.log_format,
    };
    let subscriber = SinkSubscriber {
        sink: sink.clone(),
        debug: opts.debug,
        pid: std::process::id(),
    };
    let _ = tracing::subscriber::set_global_default(subscriber);
    Some(sink)
}

/// A minimal subscriber: skiff writes flat records and keeps no span data,
/// so it needs none of a span registry's allocations (a short-lived runtime
/// call pays for every page it touches).
struct SinkSubscriber {
    sink: LogSink,
    debug: bool,
    /// skiff's own pid; events from other pids come from forked children.
    pid: u32,
}

impl Subscriber for SinkSubscriber {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        if self.debug {
            return *meta.level() <= Level::DEBUG;
        }
        // Without --debug: skiff's own warnings and errors, and the errors that
        // libcontainer logs in the container's init or exec process (see on_event).
        *meta.level() <= Level::WARN
            && (meta.target().starts_with("skiff") || *meta.level() == Level::ERROR)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if self.debug {
            LevelFilter::DEBUG
        } else {
            LevelFilter::WARN
        })
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Spans are not tracked; every span gets the same (valid, non-zero) id.
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut v = MessageVisitor::default();
        event.record(&mut v);
        let ours = event.metadata().target().starts_with("skiff");
        // A library error in skiff's own process comes back as an error value
        // that skiff reports. One in a forked child (the container's init or an
        // exec'd process) reaches the parent only as "failed to prepare rootfs"
        // or the like, so the child writes the cause itself.
        if !ours && !self.debug && std::process::id() == self.pid {
            return;
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        self.sink.write_record(level, &v.text);
    }
}

#[derive(Default)]
struct MessageVisitor {
    text: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}
