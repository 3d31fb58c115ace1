//! Errors of the frontend. A Dockerfile error names the file, the 1-based line and column
//! (in characters) and carries the offending physical line, so it prints like a compiler error.

use std::fmt;
use std::path::PathBuf;

/// A syntax or semantic error at one place of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file name as given to the parser (usually `Dockerfile`).
    pub file: String,
    /// 1-based physical line.
    pub line: usize,
    /// 1-based column, counted in characters of that line.
    pub column: usize,
    pub message: String,
    /// The physical line the error points into, without its line ending.
    pub source_line: String,
}

impl ParseError {
    /// `FILE:LINE:COL: message`, the first line of the display form.
    pub fn headline(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        if self.source_line.is_empty() {
            return Ok(());
        }
        // Keep tabs in the caret line so the caret lines up under tabbed text.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "\n    {}\n    {}^", self.source_line, pad)
    }
}

/// A failed variable expansion. `offset` is the byte offset in the expanded word where the
/// faulty construct starts (an opening quote, a `$`), so a caller can turn it into a column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    pub offset: usize,
    pub message: String,
}

impl ExpandError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        ExpandError {
            offset,
            message: message.into(),
        }
    }
}

/// Errors of reading or compiling a .dockerignore file.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}: {pattern:?}")]
    Pattern {
        file: String,
        line: usize,
        pattern: String,
        message: String,
    },
}
