//! How a failed command is reported: like runc, the error goes to the log
//! (text or JSON, where containerd and podman look for it) and to stderr.

use crate::logging::LogSink;

/// Writes `err` with its causes on one line, runc-style.
pub fn report(err: &anyhow::Error, sink: Option<&LogSink>) {
    let msg = format!("{err:#}");
    if let Some(sink) = sink {
        sink.write_record("error", &msg);
        if sink.is_stderr() {
            return;
        }
    }
    eprintln!("skiff: {msg}");
}
