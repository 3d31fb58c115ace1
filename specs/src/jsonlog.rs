//! docker's json-file log format: one JSON object per line of output,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}`,
//! with size-based rotation (`log`, `log.1`, … `log.N`, oldest last). The
//! container monitor writes it; `skiffctl logs` reads it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::monitor::LogConfig;

/// Output longer than this without a newline is written as a partial line,
/// as docker's copier does with its 16 KiB buffer.
pub const MAX_LINE: usize = 16 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl Entry {
    /// The entry's time; None when it does not parse.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.time)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// docker's time format: RFC 3339 in UTC with nanoseconds.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Appends entries to a json-file log, rotating by size.
#[derive(Debug)]
pub struct Writer {
    config: LogConfig,
    file: File,
    size: u64,
}

impl Writer {
    pub fn open(config: &LogConfig) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            config: config.clone(),
            file,
            size,
        })
    }

    /// Writes one entry for `text` (a line with its newline, or a partial
    /// line) from `stream` at `at`.
    pub fn write(&mut self, stream: &str, text: &[u8], at: DateTime<Utc>) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(text).into_owned(),
            stream: stream.to_owned(),
            time: format_time(at),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.config.max_size > 0
            && self.size > 0
            && self.size + line.len() as u64 > self.config.max_size
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.config.max_file.max(1);
        let path = &self.config.path;
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        // log.(N-1) is dropped, each older one moves up, log becomes log.1.
        for i in (1..keep - 1).rev() {
            let from = rotated(path, i);
            if from.exists() {
                fs::rename(&from, rotated(path, i + 1))?;
            }
        }
        fs::rename(path, rotated(path, 1))?;
        self.file = OpenOptions::new().create(true).append(true).open(path)?;
        self.size = 0;
        Ok(())
    }
}

/// Splits a stream's output into docker's entries: whole lines, or
/// MAX_LINE-byte pieces of a longer one; `finish` flushes a last partial line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; calls `emit` for each complete entry.
    pub fn push(
        &mut self,
        data: &[u8],
        mut emit: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl + 1;
            emit(&self.pending[start..end])?;
            start = end;
        }
        while self.pending.len() - start >= MAX_LINE {
            emit(&self.pending[start..start + MAX_LINE])?;
            start += MAX_LINE;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Emits what is left (output that did not end in a newline).
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if !self.pending.is_empty() {
            emit(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// `path.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The log's files that exist, oldest first.
pub fn files(path: &Path, max_file: u32) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..max_file.max(1))
        .rev()
        .map(|n| rotated(path, n))
        .filter(|p| p.exists())
        .collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Every entry of the log, oldest first. Lines that do not parse (a line
/// cut by a crash) are skipped.
pub fn read_all(path: &Path, max_file: u32) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for f in files(path, max_file) {
        let file = match File::open(&f) {
            Ok(file) => file,
            // Rotated away between listing and opening.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).split(b'\n') {
            if let Ok(e) = serde_json::from_slice::<Entry>(&line?) {
                entries.push(e);
            }
        }
    }
    Ok(entries)
}

/// Follows a log as it grows (`logs -f`): each `poll` returns the whole
/// lines appended since the last one, also across a rotation (the rest of
/// the file that became `log.1` first, then the new file from its start).
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    ino: Option<u64>,
    offset: u64,
}

impl Follower {
    /// Starts at the current end of the log (`from_start`: at its start).
    pub fn new(path: &Path, from_start: bool) -> Self {
        use std::os::unix::fs::MetadataExt;
        let md = fs::metadata(path).ok();
        Self {
            path: path.to_path_buf(),
            ino: md.as_ref().map(|m| m.ino()),
            offset: if from_start {
                0
            } else {
                md.map_or(0, |m| m.len())
            },
        }
    }

    pub fn poll(&mut self) -> io::Result<Vec<Entry>> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let now = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        if self.ino.is_some_and(|ino| ino != now.ino()) {
            // Rotated: finish the old file if it is still there as log.1.
            let old = rotated(&self.path, 1);
            if fs::metadata(&old).is_ok_and(|m| Some(m.ino()) == self.ino) {
                out.extend(read_lines_from(&old, self.offset)?.0);
            }
            self.offset = 0;
        }
        self.ino = Some(now.ino());
        if now.len() < self.offset {
            // Truncated in place (max-file 1).
            self.offset = 0;
        }
        let (entries, offset) = read_lines_from(&self.path, self.offset)?;
        self.offset = offset;
        out.extend(entries);
        Ok(out)
    }
}

/// The whole lines of `path` from byte `offset` on, and the offset after them.
fn read_lines_from(path: &Path, offset: u64) -> io::Result<(Vec<Entry>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let whole = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let entries = buf[..whole]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Entry>(l).ok())
        .collect();
    Ok((entries, offset + whole as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_size: u64, max_file: u32) -> LogConfig {
        LogConfig {
            path: dir.join("c-json.log"),
            max_size,
            max_file,
        }
    }

    #[test]
    fn lines_are_split_as_docker_does() -> io::Result<()> {
        let mut s = LineSplitter::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        s.push(b"a\nb", |l| {
            got.push(l.to_vec());
            Ok(())
        })?;
        s.push(b"c\n\n", |l| {
            got.push(l.to_vec());
            Ok(())
        })?;
        let long = vec![b'x'; MAX_LINE + 3];
        s.push(&long, |l| {
            got.push(l.to_vec());
            Ok(())
        })?;
        s.finish(|l| {
            got.push(l.to_vec());
            Ok(())
        })?;
        assert_eq!(got[0], b"a\n");
        assert_eq!(got[1], b"bc\n");
        assert_eq!(got[2], b"\n");
        assert_eq!(got[3].len(), MAX_LINE);
        assert_eq!(got[4], b"xxx");
        Ok(())
    }

    #[test]
    fn write_read_and_rotate() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = config(dir.path(), 300, 3);
        let mut w = Writer::open(&cfg)?;
        for i in 0..20 {
            w.write("stdout", format!("line {i}\n").as_bytes(), Utc::now())?;
        }
        let all = read_all(&cfg.path, cfg.max_file)?;
        // Three files of at most 300 bytes hold the newest lines, in order.
        assert!(all.len() < 20 && all.len() >= 6, "{}", all.len());
        assert_eq!(all.last().map(|e| e.log.as_str()), Some("line 19\n"));
        let nums: Vec<u32> = all
            .iter()
            .filter_map(|e| e.log.trim().strip_prefix("line ")?.parse().ok())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(!rotated(&cfg.path, 3).exists());
        assert!(all.iter().all(|e| e.timestamp().is_some()));
        Ok(())
    }

    #[test]
    fn follow_reads_whole_lines_and_survives_rotation() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = config(dir.path(), 200, 2);
        let mut w = Writer::open(&cfg)?;
        w.write("stderr", b"one\n", Utc::now())?;
        let mut f = Follower::new(&cfg.path, true);
        let got = f.poll()?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].stream, "stderr");
        // A half-written line is left for the next poll, which gets it whole.
        let mut raw = fs::OpenOptions::new().append(true).open(&cfg.path)?;
        raw.write_all(b"{\"log\":\"par")?;
        assert!(f.poll()?.is_empty());
        raw.write_all(b"t\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n")?;
        assert_eq!(f.poll()?.first().map(|e| e.log.as_str()), Some("part\n"));
        // Enough lines to rotate: nothing is lost or repeated.
        let mut w = Writer::open(&cfg)?;
        let mut seen = Vec::new();
        for i in 0..12 {
            w.write("stdout", format!("n{i}\n").as_bytes(), Utc::now())?;
            seen.extend(f.poll()?.into_iter().map(|e| e.log));
        }
        let want: Vec<String> = (0..12).map(|i| format!("n{i}\n")).collect();
        let got: Vec<String> = seen.into_iter().filter(|l| l.starts_with('n')).collect();
        assert_eq!(got, want);
        Ok(())
    }
}
