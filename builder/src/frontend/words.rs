//! Argument splitting that happens before expansion, with byte offsets for error columns.

/// Splits on runs of blanks (space, tab, vertical tab, form feed, CR), quotes not honoured:
/// how FROM, EXPOSE and the shell forms of COPY, ADD and VOLUME split their arguments.
pub(crate) fn split_blanks(s: &str, base: usize) -> Vec<(String, usize)> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r');
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (blank(c), start) {
            (true, Some(st)) => {
                out.push((s[st..i].to_string(), base + st));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((s[st..].to_string(), base + st));
    }
    out
}

/// Splits ENV, LABEL and ARG arguments into words at unquoted whitespace. Quotes and escapes
/// stay in the words (expansion removes them later); an escape character at the very end is
/// dropped. An unclosed quote runs to the end of the line.
pub(crate) fn split_words(s: &str, base: usize, escape: char) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if quote.is_none() && c.is_whitespace() {
            if let Some(st) = start.take() {
                out.push((std::mem::take(&mut word), base + st));
            }
            continue;
        }
        start.get_or_insert(i);
        // Inside single quotes the escape character is ordinary.
        let escapes = quote != Some('\'');
        match quote {
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ => {}
        }
        if c == escape && escapes {
            match it.next() {
                None => continue,
                Some((_, n)) => {
                    word.push(c);
                    word.push(n);
                    continue;
                }
            }
        }
        word.push(c);
    }
    if let Some(st) = start {
        out.push((word, base + st));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks() {
        assert_eq!(
            split_blanks(" a\t\"b c\" ", 10),
            [
                ("a".to_string(), 11),
                ("\"b".to_string(), 13),
                ("c\"".to_string(), 16)
            ]
        );
    }

    #[test]
    fn words_keep_quotes() {
        let w: Vec<String> = split_words(r#"a="x y" b=c\ d e='f\' g=h\"#, 0, '\\')
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(w, [r#"a="x y""#, r"b=c\ d", r"e='f\'", "g=h"]);
        let at: Vec<usize> = split_words("  x  yy", 4, '\\')
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        assert_eq!(at, [6, 9]);
    }
}
