//! Log records to stderr in logfmt (containerd copies the shim's `log` FIFO,
//! which the server puts on stderr, into its own log).

use std::fmt::Write as _;
use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

pub fn init(debug: bool) {
    let _ = tracing::subscriber::set_global_default(Stderr { debug });
}

/// Writes flat records and keeps no span data (a shim lives long on little memory).
struct Stderr {
    debug: bool,
}

impl Subscriber for Stderr {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level()
            <= if self.debug {
                Level::DEBUG
            } else {
                Level::INFO
            }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if self.debug {
            LevelFilter::DEBUG
        } else {
            LevelFilter::INFO
        })
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut v = Fields::default();
        event.record(&mut v);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let msg = serde_json::Value::String(v.msg);
        let line = format!(
            "level={level} msg={msg}{} runtime={}\n",
            v.rest,
            crate::info::RUNTIME_NAME
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}
