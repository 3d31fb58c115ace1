//! compose's dotenv format, for the project's `.env`, `--env-file` and a
//! service's `env_file`:
//!
//! - `KEY=VALUE`, `KEY: VALUE` and `export KEY=VALUE`; blank lines and lines
//!   starting with `#` are skipped; a bare `KEY` takes the value from the
//!   lookup (the shell), or stays unset;
//! - unquoted values end at the line's end, a ` #` starts a comment, trailing
//!   blanks are dropped, variables are interpolated;
//! - `'single'` quotes are literal (only `\'` is unescaped);
//! - `"double"` quotes may span lines, know `\n \r \t \\ \" \$` and friends,
//!   and are interpolated;
//! - interpolation sees the lookup first, then the keys defined above.

use std::collections::BTreeMap;

use super::interpolate::Interpolator;

/// The variables of one file, in a map (a later line wins over an earlier one).
pub(crate) fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut out = BTreeMap::new();
    loop {
        p.skip_blank();
        match p.peek() {
            None => break,
            Some('#') => {
                p.skip_line();
                continue;
            }
            Some(_) => {}
        }
        p.skip_export();
        let line = p.line;
        let (key, terminator) = p.key()?;
        if key.is_empty() {
            return Err(format!("line {line}: missing variable name"));
        }
        if terminator != '=' && terminator != ':' {
            // A bare name inherits the outside value; it stays unset otherwise.
            if let Some(v) = lookup(&key) {
                out.insert(key, v);
            }
            continue;
        }
        p.skip_spaces();
        let value = match p.peek() {
            Some(q @ ('"' | '\'')) => {
                let raw = p.quoted(q)?;
                p.after_quote()?;
                if q == '"' {
                    expand(&unescape(&raw), &out, lookup, warnings)
                        .map_err(|e| format!("line {line}: {e}"))?
                } else {
                    raw
                }
            }
            _ => {
                let raw = p.rest_of_line();
                let value = match raw.find(" #") {
                    Some(i) => &raw[..i],
                    None => raw.as_str(),
                };
                expand(value.trim_end(), &out, lookup, warnings)
                    .map_err(|e| format!("line {line}: {e}"))?
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// `format: raw` env files: `KEY=VALUE` lines taken as they are, no quotes,
/// no interpolation.
pub(crate) fn parse_raw(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_owned(), v.to_owned());
            }
            _ => return Err(format!("line {}: expected KEY=VALUE", n + 1)),
        }
    }
    Ok(out)
}

fn expand(
    value: &str,
    defined: &BTreeMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    if !value.contains('$') {
        return Ok(value.to_owned());
    }
    let both = |k: &str| lookup(k).or_else(|| defined.get(k).cloned());
    let mut i = Interpolator::new(&both);
    let r = i.substitute(value);
    warnings.append(&mut i.warnings);
    r
}

/// Escape sequences of double-quoted values. `\$` becomes `$$`, so that the
/// interpolation after it leaves a literal `$`.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('$') => out.push_str("$$"),
            Some('0') => {
                chars.next();
                let mut code = 0u32;
                let mut digits = 0;
                while digits < 3 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            chars.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(code).unwrap_or('\0'));
                continue;
            }
            // Unknown escapes stay as written, backslash included.
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blank(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c != '\n' && c.is_whitespace()) {
            self.bump();
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn skip_export(&mut self) {
        let word: String = self.chars[self.pos..].iter().take(7).collect();
        if word.len() == 7 && word.starts_with("export") && word.ends_with([' ', '\t']) {
            self.pos += 6;
            self.skip_spaces();
        }
    }

    /// The key, and what ended it: `=`, `:`, or a newline/end for a bare key.
    fn key(&mut self) -> Result<(String, char), String> {
        let mut key = String::new();
        let line = self.line;
        loop {
            match self.peek() {
                None | Some('=' | ':' | '\n') => {
                    let c = self.bump().unwrap_or('\n');
                    let key = key.trim_end().to_owned();
                    if key.contains(char::is_whitespace) {
                        return Err(format!(
                            "line {line}: variable name {key:?} contains a space"
                        ));
                    }
                    return Ok((key, c));
                }
                Some(c)
                    if c.is_alphanumeric()
                        || matches!(c, '_' | '.' | '-' | '[' | ']')
                        || matches!(c, ' ' | '\t' | '\r') =>
                {
                    key.push(c);
                    self.bump();
                }
                Some(c) => {
                    return Err(format!(
                        "line {line}: unexpected character {c:?} in variable name"
                    ))
                }
            }
        }
    }

    /// A quoted value; the cursor is on the opening quote. `\` before the
    /// quote character drops the backslash; other escapes are kept for `unescape`.
    fn quoted(&mut self, quote: char) -> Result<String, String> {
        let line = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(format!("line {line}: unterminated quoted value")),
                Some('\\') => match self.bump() {
                    Some(c) if c == quote => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err(format!("line {line}: unterminated quoted value")),
                },
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// After a closing quote only blanks and a `#` comment may follow.
    fn after_quote(&mut self) -> Result<(), String> {
        self.skip_spaces();
        match self.peek() {
            None | Some('\n') => Ok(()),
            Some('#') => {
                self.skip_line();
                Ok(())
            }
            Some(c) => Err(format!(
                "line {}: unexpected {c:?} after a quoted value",
                self.line
            )),
        }
    }

    fn rest_of_line(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            out.push(c);
            self.bump();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> BTreeMap<String, String> {
        let lookup = |k: &str| (k == "SHELL_VAR").then(|| "from-shell".to_owned());
        let mut w = Vec::new();
        parse(text, &lookup, &mut w).expect("parses")
    }

    fn get(m: &BTreeMap<String, String>, k: &str) -> String {
        m.get(k).cloned().unwrap_or_else(|| format!("<unset {k}>"))
    }

    #[test]
    fn basics() {
        let m = env("# comment\n\nA=1\n  B = two words  \nexport C=3\nD: yaml-style\nE=\nexported=x\nexport\tF=tab\n");
        assert_eq!(get(&m, "A"), "1");
        assert_eq!(get(&m, "B"), "two words");
        assert_eq!(get(&m, "C"), "3");
        assert_eq!(get(&m, "D"), "yaml-style");
        assert_eq!(get(&m, "E"), "");
        assert_eq!(get(&m, "exported"), "x");
        assert_eq!(get(&m, "F"), "tab");
    }

    #[test]
    fn inline_comments() {
        let m = env("A=value # comment\nB=value# not a comment\nC=\"quoted # kept\" # dropped\nD='single' #x\nE=#start\n");
        assert_eq!(get(&m, "A"), "value");
        assert_eq!(get(&m, "B"), "value# not a comment");
        assert_eq!(get(&m, "C"), "quoted # kept");
        assert_eq!(get(&m, "D"), "single");
        assert_eq!(get(&m, "E"), "#start");
    }

    #[test]
    fn quotes_and_escapes() {
        let m = env(concat!(
            "A='Let\\'s go!'\n",
            "B=\"{\\\"hello\\\": \\\"json\\\"}\"\n",
            "C=\"some\\tvalue\"\n",
            "D='some\\tvalue'\n",
            "E=some\\tvalue\n",
            "F=\"a\\\\b\"\n",
            "G=\"line1\\nline2\"\n",
            "H=\"\\$NOT\"\n",
            "I='$SHELL_VAR'\n",
            "J=\"oct\\0101\"\n",
        ));
        assert_eq!(get(&m, "A"), "Let's go!");
        assert_eq!(get(&m, "B"), "{\"hello\": \"json\"}");
        assert_eq!(get(&m, "C"), "some\tvalue");
        assert_eq!(get(&m, "D"), "some\\tvalue");
        assert_eq!(get(&m, "E"), "some\\tvalue");
        assert_eq!(get(&m, "F"), "a\\b");
        assert_eq!(get(&m, "G"), "line1\nline2");
        assert_eq!(get(&m, "H"), "$NOT");
        assert_eq!(get(&m, "I"), "$SHELL_VAR");
        assert_eq!(get(&m, "J"), "octA");
    }

    #[test]
    fn multi_line_double_quoted() {
        let m = env("CERT=\"-----BEGIN-----\nabc\ndef\n-----END-----\"\nNEXT=1\n");
        assert_eq!(get(&m, "CERT"), "-----BEGIN-----\nabc\ndef\n-----END-----");
        assert_eq!(get(&m, "NEXT"), "1");
        let m = env("S='one\ntwo'\n");
        assert_eq!(get(&m, "S"), "one\ntwo");
    }

    #[test]
    fn interpolation_sees_shell_then_earlier_keys() {
        let m = env("BASE=/srv\nDATA=${BASE}/data\nQ=\"$BASE/q\"\nS=${SHELL_VAR}\nDEF=${MISSING:-fallback}\nSHELL_VAR=file\nAGAIN=$SHELL_VAR\n");
        assert_eq!(get(&m, "DATA"), "/srv/data");
        assert_eq!(get(&m, "Q"), "/srv/q");
        assert_eq!(get(&m, "S"), "from-shell");
        assert_eq!(get(&m, "DEF"), "fallback");
        // The shell wins over the file's own definition.
        assert_eq!(get(&m, "AGAIN"), "from-shell");
    }

    #[test]
    fn crlf_lines() {
        let m = env("A=1\r\nB=\"two\"\r\nSHELL_VAR\r\n");
        assert_eq!(get(&m, "A"), "1");
        assert_eq!(get(&m, "B"), "two");
        assert_eq!(get(&m, "SHELL_VAR"), "from-shell");
    }

    #[test]
    fn bare_keys_inherit() {
        let m = env("SHELL_VAR\nNOT_IN_SHELL\nA=1");
        assert_eq!(get(&m, "SHELL_VAR"), "from-shell");
        assert!(!m.contains_key("NOT_IN_SHELL"));
        assert_eq!(get(&m, "A"), "1");
    }

    #[test]
    fn errors_have_line_numbers() {
        let lookup = |_: &str| None;
        let mut w = Vec::new();
        assert_eq!(
            parse("A=1\nB=\"open\n", &lookup, &mut w),
            Err("line 2: unterminated quoted value".to_owned())
        );
        assert_eq!(
            parse("A B=1\n", &lookup, &mut w),
            Err("line 1: variable name \"A B\" contains a space".to_owned())
        );
        assert_eq!(
            parse("\nA$=1\n", &lookup, &mut w),
            Err("line 2: unexpected character '$' in variable name".to_owned())
        );
        assert_eq!(
            parse("A=\"x\" y\n", &lookup, &mut w),
            Err("line 1: unexpected 'y' after a quoted value".to_owned())
        );
        assert!(parse("A=${B:?need B}\n", &lookup, &mut w)
            .expect_err("must fail")
            .contains("required variable B is missing a value: need B"));
    }

    #[test]
    fn raw_format() {
        let m = parse_raw("# c\nA=\"quoted $X\"\nB=a=b\n").expect("raw");
        assert_eq!(get(&m, "A"), "\"quoted $X\"");
        assert_eq!(get(&m, "B"), "a=b");
    }
}
