//! A monitored container's output as docker's json-file log: one writer per
//! container (rotation needs one owner), shared by its streams, each with a
//! line splitter of its own so stdout and stderr lines never mix.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use skiff_specs::jsonlog::{LineSplitter, Writer};
use skiff_specs::monitor::LogConfig;
use tracing::warn;

/// The log file (and its rotated predecessors) of one container.
pub struct JsonLog {
    writer: Mutex<Writer>,
}

impl JsonLog {
    pub fn open(config: &LogConfig) -> io::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            writer: Mutex::new(Writer::open(config)?),
        }))
    }

    fn write(&self, stream: &str, text: &[u8]) -> io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.write(stream, text, Utc::now())
    }
}

/// Writes larger than this leave a splitter with a buffer worth freeing.
const SHRINK_AFTER: usize = 4096;

/// One stream's side: what an output copier writes to. Whole lines become
/// entries at once; a last partial line when the copier flushes (an exit's
/// drain) or ends.
pub struct LogStream {
    log: Arc<JsonLog>,
    stream: &'static str,
    splitter: LineSplitter,
    /// The last write failed (warned once until one succeeds again).
    failing: bool,
}

impl LogStream {
    pub fn new(log: Arc<JsonLog>, stream: &'static str) -> Self {
        Self {
            log,
            stream,
            splitter: LineSplitter::default(),
            failing: false,
        }
    }

    /// A full disk loses entries, not the copier: the container must not
    /// block on its output, and the next entry may fit again.
    fn note(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                warn!("container output lost: cannot write the json-file log: {e}");
                self.failing = true;
            }
            Err(_) => {}
        }
    }
}

impl Write for LogStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (log, stream) = (&self.log, self.stream);
        let result = self.splitter.push(buf, |line| log.write(stream, line));
        self.note(result);
        if buf.len() > SHRINK_AFTER && buf.ends_with(b"\n") {
            // Every line went out, so nothing is pending: a fresh splitter
            // gives the memory of a burst of output back.
            self.splitter = LineSplitter::default();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let (log, stream) = (&self.log, self.stream);
        let result = self.splitter.finish(|line| log.write(stream, line));
        self.note(result);
        Ok(())
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_specs::jsonlog::read_all;

    #[test]
    fn streams_share_one_log_and_keep_their_lines_apart() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = LogConfig {
            path: dir.path().join("c-json.log"),
            max_size: 0,
            max_file: 1,
        };
        let log = JsonLog::open(&config)?;
        let mut out = LogStream::new(log.clone(), "stdout");
        let mut err = LogStream::new(log, "stderr");
        out.write_all(b"one ")?;
        err.write_all(b"oops\n")?;
        out.write_all(b"line\ntail")?;
        // The drain flushes the partial line; the end writes nothing more.
        out.flush()?;
        drop(out);
        drop(err);
        let got: Vec<(String, String)> = read_all(&config.path, 1)?
            .into_iter()
            .map(|e| (e.stream, e.log))
            .collect();
        let want = [
            ("stderr", "oops\n"),
            ("stdout", "one line\n"),
            ("stdout", "tail"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .collect();
        assert_eq!(got, want);
        Ok(())
    }
}
