//! Turns the physical lines of a Dockerfile into logical lines: comments dropped, line
//! continuations joined (also across empty and comment lines, as BuildKit does), heredoc
//! bodies collected. Every byte of a logical line maps back to a physical line and column.

use super::heredoc::{self, Heredoc};

/// A 1-based physical line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub line: usize,
    pub col: usize,
}

pub(crate) type LexError = (Loc, String);

/// Where a piece of the logical text starts in the file.
#[derive(Debug, Clone)]
struct Seg {
    at: usize,
    line: usize,
    col: usize,
}

/// One instruction's text with its heredocs.
#[derive(Debug, Clone)]
pub(crate) struct LogicalLine {
    pub text: String,
    pub start_line: usize,
    /// Last physical line, heredoc bodies included.
    pub end_line: usize,
    segs: Vec<Seg>,
    pub heredocs: Vec<Heredoc>,
}

impl LogicalLine {
    fn new(text: &str, line: usize, col: usize) -> Self {
        LogicalLine {
            text: text.to_string(),
            start_line: line,
            end_line: line,
            segs: vec![Seg { at: 0, line, col }],
            heredocs: Vec::new(),
        }
    }

    fn push(&mut self, text: &str, line: usize) {
        self.segs.push(Seg {
            at: self.text.len(),
            line,
            col: 1,
        });
        self.text.push_str(text);
        self.end_line = line;
    }

    /// The physical position of a byte offset of `text`.
    pub fn loc(&self, offset: usize) -> Loc {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let seg = self
            .segs
            .iter()
            .rev()
            .find(|s| s.at <= offset)
            .or(self.segs.first());
        match seg {
            Some(s) => Loc {
                line: s.line,
                col: s.col + self.text[s.at..offset].chars().count(),
            },
            None => Loc {
                line: self.start_line,
                col: 1,
            },
        }
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing escape character (plus blanks after it): the line continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// Whether the instruction may carry heredocs: RUN, COPY, ADD, also behind ONBUILD.
fn takes_heredocs(text: &str) -> bool {
    let mut words = text.split_whitespace().map(str::to_ascii_lowercase);
    let first = words.next().unwrap_or_default();
    let kw = if first == "onbuild" {
        words.next().unwrap_or_default()
    } else {
        first
    };
    matches!(kw.as_str(), "run" | "copy" | "add")
}

pub(crate) fn lex(lines: &[&str], escape: char) -> Result<Vec<LogicalLine>, LexError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let number = i;
        if is_comment(raw) {
            continue;
        }
        let stripped = raw.trim_start();
        let (text, mut more) = trim_continuation(stripped, escape);
        if !more && text.is_empty() {
            continue;
        }
        let col = raw[..raw.len() - stripped.len()].chars().count() + 1;
        let mut logical = LogicalLine::new(text, number, col);
        while more && i < lines.len() {
            let raw = lines[i];
            i += 1;
            if is_comment(raw) || raw.trim_start().is_empty() {
                continue;
            }
            let (text, cont) = trim_continuation(raw, escape);
            logical.push(text, i);
            more = cont;
        }
        if logical.text.trim().is_empty() {
            continue;
        }
        if takes_heredocs(&logical.text) && logical.text.contains("<<") {
            let found =
                heredoc::markers(&logical.text).map_err(|(at, msg)| (logical.loc(at), msg))?;
            for marker in found {
                let mut doc = marker.heredoc;
                let mut terminated = false;
                while i < lines.len() {
                    let body = lines[i];
                    i += 1;
                    let candidate = if doc.chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(body);
                    doc.content.push('\n');
                }
                if !terminated {
                    return Err((
                        logical.loc(marker.offset),
                        format!("unterminated heredoc: no line {:?} ends it", doc.name),
                    ));
                }
                if doc.chomp {
                    doc.content = heredoc::chomp(&doc.content);
                }
                logical.end_line = i;
                logical.heredocs.push(doc);
            }
        }
        out.push(logical);
    }
    Ok(out)
}

/// Splits a file into physical lines: `\n` or `\r\n` endings, a leading UTF-8 BOM dropped.
pub(crate) fn physical_lines(text: &str) -> Vec<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<(String, usize, usize)> {
        let lines = physical_lines(src);
        lex(&lines, '\\')
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.text, l.start_line, l.end_line))
            .collect()
    }

    #[test]
    fn continuations_skip_comments_and_blank_lines() {
        let got = texts("FROM a\nRUN a \\\n# c\n\n   \n  b \\  \n c\n\n# x\nCMD x\n");
        assert_eq!(
            got,
            [
                ("FROM a".to_string(), 1, 1),
                ("RUN a   b  c".to_string(), 2, 7),
                ("CMD x".to_string(), 10, 10),
            ]
        );
    }

    #[test]
    fn positions_map_back() {
        let lines = physical_lines("  RUN a \\\n\tbcd");
        let l = lex(&lines, '\\').unwrap_or_default();
        let l = &l[0];
        assert_eq!(l.text, "RUN a \tbcd");
        assert_eq!(l.loc(0), Loc { line: 1, col: 3 });
        assert_eq!(l.loc(4), Loc { line: 1, col: 7 });
        assert_eq!(l.loc(7), Loc { line: 2, col: 2 });
    }

    #[test]
    fn heredoc_bodies() {
        let lines = physical_lines("RUN <<A cat - <<-B\nx\nA\n\ty\n\tB\nCMD z\n");
        let l = lex(&lines, '\\').unwrap_or_default();
        assert_eq!(l.len(), 2);
        let docs: Vec<(&str, &str)> = l[0]
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str()))
            .collect();
        assert_eq!(docs, [("A", "x\n"), ("B", "y\n")]);
        assert_eq!(l[0].end_line, 5);
        assert_eq!(l[1].text, "CMD z");
    }

    #[test]
    fn unterminated_heredoc() {
        let lines = physical_lines("FROM a\nCOPY <<EOF /x\nhello\n");
        let err = lex(&lines, '\\').err();
        assert_eq!(
            err,
            Some((
                Loc { line: 2, col: 6 },
                "unterminated heredoc: no line \"EOF\" ends it".to_string()
            ))
        );
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(
            lex(&physical_lines("RUN a `\n b\\"), '`')
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.text)
                .collect::<Vec<_>>(),
            ["RUN a  b\\"]
        );
    }
}
