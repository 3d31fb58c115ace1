//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`) in RUN, COPY and ADD. A heredoc marker
//! is a whole shell word of the instruction line; its body is the physical lines that follow
//! the instruction, up to a line that is exactly the delimiter (after leading tabs for `<<-`).

/// One heredoc of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter after quote removal; for COPY/ADD also the file name of the source.
    pub name: String,
    /// The body, every line ending in `\n`; for `<<-` leading tabs are already removed.
    pub content: String,
    /// Whether `$` expansion applies to the body (false when the delimiter was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs of body lines and of the terminator line are stripped.
    pub chomp: bool,
    /// The file descriptor written before `<<`, as in `3<<EOF`.
    pub fd: Option<u32>,
}

/// A heredoc marker found in an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    /// Byte offset of the marker word in the line.
    pub offset: usize,
    pub heredoc: Heredoc,
}

/// Parses a single word as a heredoc marker: `^[0-9]*<<-?[^<]+$`, the delimiter being one
/// shell word. `Ok(None)` when the word is not a heredoc marker.
pub fn parse_marker(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = match digits {
        0 => None,
        _ => word[..digits].parse().ok(),
    };
    let lexer = super::expand::Expander::new('\\').keep_unset();
    let words = lexer
        .words(rest, &super::expand::NoVars)
        .map_err(|e| format!("bad heredoc delimiter {rest:?}: {e}"))?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lexer
        .keep_quotes()
        .words(rest, &super::expand::NoVars)
        .map_err(|e| format!("bad heredoc delimiter {rest:?}: {e}"))?;
    // Quote removal changed the word iff some part of the delimiter was quoted.
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw.first().map(|r| quotes(r)) == Some(quotes(name));
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand,
        chomp,
        fd,
    }))
}

/// Finds the heredoc markers among the shell words of `line`. Words are split the way the
/// shell would, keeping quotes; a line whose quotes do not close has no heredocs, unless the
/// unclosed quote is inside a heredoc marker, which is an error at that quote.
pub(crate) fn markers(line: &str) -> Result<Vec<Marker>, (usize, String)> {
    let (words, unclosed) = split_raw(line);
    if let Some((word_at, quote_at)) = unclosed {
        if is_marker_start(&line[word_at..]) {
            return Err((
                quote_at,
                "unterminated quote in heredoc delimiter".to_string(),
            ));
        }
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (offset, word) in words {
        if let Some(heredoc) = parse_marker(word).map_err(|e| (offset, e))? {
            out.push(Marker { offset, heredoc });
        }
    }
    Ok(out)
}

fn is_marker_start(s: &str) -> bool {
    s.trim_start_matches(|c: char| c.is_ascii_digit())
        .starts_with("<<")
}

/// Raw words with their offsets, and where an unclosed quote's word and quote start.
type RawWords<'a> = (Vec<(usize, &'a str)>, Option<(usize, usize)>);

/// Splits `line` into raw shell words with their offsets.
fn split_raw(line: &str) -> RawWords<'_> {
    let mut words = Vec::new();
    let mut it = line.char_indices().peekable();
    let mut start: Option<usize> = None;
    while let Some((i, c)) = it.next() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push((s, &line[s..i]));
            }
            continue;
        }
        let s = *start.get_or_insert(i);
        match c {
            '\\' => {
                it.next();
            }
            '\'' => loop {
                match it.next() {
                    Some((_, '\'')) => break,
                    Some(_) => {}
                    None => return (words, Some((s, i))),
                }
            },
            '"' => loop {
                match it.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => {
                        it.next();
                    }
                    Some(_) => {}
                    None => return (words, Some((s, i))),
                }
            },
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, &line[s..]));
    }
    (words, None)
}

/// Removes leading tabs from every line, as `<<-` asks.
pub(crate) fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(word: &str) -> Option<(String, bool, bool, Option<u32>)> {
        parse_marker(word)
            .ok()
            .flatten()
            .map(|h| (h.name, h.expand, h.chomp, h.fd))
    }

    #[test]
    fn marker_words() {
        assert_eq!(marker("<<EOF"), Some(("EOF".into(), true, false, None)));
        assert_eq!(marker("<<-EOF"), Some(("EOF".into(), true, true, None)));
        assert_eq!(marker("<<'EOF'"), Some(("EOF".into(), false, false, None)));
        assert_eq!(
            marker("<<\"E F\""),
            Some(("E F".into(), false, false, None))
        );
        assert_eq!(
            marker("<<E\"O\"F"),
            Some(("EOF".into(), false, false, None))
        );
        assert_eq!(marker("3<<EOF"), Some(("EOF".into(), true, false, Some(3))));
        assert_eq!(marker("<<"), None);
        assert_eq!(marker("<<<EOF"), None);
        assert_eq!(marker("cat<<EOF"), None);
        assert_eq!(marker("/dest"), None);
    }

    #[test]
    fn markers_in_line() -> Result<(), (usize, String)> {
        let found = markers("RUN cat <<A 'x <<B' \"<<C\" 2<<-D > out")?;
        let got: Vec<(usize, String)> = found
            .into_iter()
            .map(|m| (m.offset, m.heredoc.name))
            .collect();
        assert_eq!(got, [(8, "A".to_string()), (26, "D".to_string())]);
        assert_eq!(markers("RUN echo 'it is <<A"), Ok(vec![]));
        assert_eq!(
            markers("RUN cat <<'A"),
            Err((10, "unterminated quote in heredoc delimiter".to_string()))
        );
        Ok(())
    }

    #[test]
    fn chomps_tabs() {
        assert_eq!(chomp("\t\ta\n \tb\n\tc"), "a\n \tb\nc");
    }
}
