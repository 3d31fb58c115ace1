//! Variable expansion and quote removal with the semantics of BuildKit's shell lexer:
//! `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`,
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`; single quotes keep
//! everything literal, double quotes keep everything but `$` and the escape character
//! (which there escapes only `"`, `$` and itself), and outside quotes the escape character
//! makes the next character literal. Unset variables expand to the empty string.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::error::ExpandError;

/// Where expansion finds variable values.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl Lookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A lookup where every variable is unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVars;

impl Lookup for NoVars {
    fn lookup(&self, _name: &str) -> Option<String> {
        None
    }
}

/// The result of one expansion: the word, the same text split into words the way a shell
/// would (after expansion, honouring quotes), and which variables were looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub value: String,
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// A configured expander. `Expander::new(escape)` is what instructions use; the escape
/// character comes from the Dockerfile's `# escape=` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expander {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_quotes: bool,
    skip_unset: bool,
    check_only: bool,
}

impl Default for Expander {
    fn default() -> Self {
        Expander::new('\\')
    }
}

/// Expands one word with the default escape character `\`.
pub fn expand(word: &str, vars: &(impl Lookup + ?Sized)) -> Result<String, ExpandError> {
    Expander::default().word(word, vars)
}

/// Expands `text` and splits the result into words (quotes keep spaces inside a word).
pub fn expand_words(text: &str, vars: &(impl Lookup + ?Sized)) -> Result<Vec<String>, ExpandError> {
    Expander::default().words(text, vars)
}

impl Expander {
    pub fn new(escape: char) -> Self {
        Expander {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_quotes: false,
            skip_unset: false,
            check_only: false,
        }
    }

    /// The expander BuildKit uses for the body of a heredoc whose delimiter is unquoted:
    /// quotes are ordinary characters, `$` and `\` still work.
    pub fn heredoc_body() -> Self {
        Expander {
            skip_quotes: true,
            ..Expander::new('\\')
        }
    }

    /// Keeps quote characters in the output (they still group words).
    pub(crate) fn keep_quotes(mut self) -> Self {
        self.raw_quotes = true;
        self
    }

    /// Leaves references to unset variables as they were written.
    pub(crate) fn keep_unset(mut self) -> Self {
        self.skip_unset = true;
        self
    }

    /// Reports syntax errors only: every variable is unset and `${v?}` never fails.
    pub(crate) fn syntax_only(mut self) -> Self {
        self.check_only = true;
        self
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    pub fn process(
        &self,
        word: &str,
        vars: &(impl Lookup + ?Sized),
    ) -> Result<Expansion, ExpandError> {
        let mut scan = Scanner {
            chars: word.char_indices().collect(),
            len: word.len(),
            pos: 0,
            ex: *self,
            vars: &|name: &str| {
                if self.check_only {
                    None
                } else {
                    vars.lookup(name)
                }
            },
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (value, words) = scan.until(None, self.raw_escapes)?;
        Ok(Expansion {
            value,
            words,
            matched: scan.matched,
            unmatched: scan.unmatched,
        })
    }

    pub fn word(&self, word: &str, vars: &(impl Lookup + ?Sized)) -> Result<String, ExpandError> {
        Ok(self.process(word, vars)?.value)
    }

    pub fn words(
        &self,
        text: &str,
        vars: &(impl Lookup + ?Sized),
    ) -> Result<Vec<String>, ExpandError> {
        Ok(self.process(text, vars)?.words)
    }

    /// Checks the syntax of a word that will be expanded later.
    pub fn check(&self, word: &str) -> Result<(), ExpandError> {
        self.syntax_only().process(word, &NoVars).map(|_| ())
    }
}

/// Collects shell words while characters are appended.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn push(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.push_raw(c);
        }
    }

    fn push_raw(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn push_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.push(c));
    }

    fn push_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scanner<'a> {
    chars: Vec<(usize, char)>,
    len: usize,
    pos: usize,
    ex: Expander,
    vars: &'a dyn Fn(&str) -> Option<String>,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.len, |&(o, _)| o)
    }

    fn get(&mut self, name: &str) -> Option<String> {
        let value = (self.vars)(name);
        if value.is_some() {
            self.matched.insert(name.to_string());
        } else {
            self.unmatched.insert(name.to_string());
        }
        value
    }

    /// Processes text up to `stop` (consumed) or the end of input when `stop` is None.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let res = self.until_inner(stop);
        self.raw_escapes = saved;
        res
    }

    fn until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ExpandError> {
        let mut out = String::new();
        let mut words = Words::default();
        let start = self.offset();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((out, words.finish()));
            }
            match c {
                '$' => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                    words.push_str(&v);
                }
                '\'' if !self.ex.skip_quotes => {
                    let v = self.single_quoted()?;
                    out.push_str(&v);
                    words.push_raw_str(&v);
                }
                '"' if !self.ex.skip_quotes => {
                    let v = self.double_quoted()?;
                    out.push_str(&v);
                    words.push_raw_str(&v);
                }
                _ => {
                    self.next();
                    if c == self.ex.escape {
                        if self.raw_escapes {
                            out.push(c);
                            words.push_raw(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        out.push(escaped);
                        words.push_raw(escaped);
                    } else {
                        out.push(c);
                        words.push(c);
                    }
                }
            }
        }
        match stop {
            Some(s) => Err(ExpandError::new(
                start,
                format!("unexpected end of statement while looking for matching {s}"),
            )),
            None => Ok((out, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let start = self.offset();
        let mut out = String::new();
        self.next();
        if self.ex.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError::new(
                        start,
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => {
                    if self.ex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let start = self.offset();
        let mut out = String::new();
        self.next();
        if self.ex.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::new(
                        start,
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => {
                    self.next();
                    if self.ex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) => {
                    self.next();
                    if c == self.ex.escape {
                        match self.peek() {
                            // Dropped; the loop then reports the missing quote.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.ex.escape => {
                                self.next();
                                if self.raw_escapes {
                                    out.push(c);
                                }
                                out.push(n);
                            }
                            // Any other escape stays literal.
                            Some(_) => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')) => {
                self.next();
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_alphabetic() || c.is_numeric() || *c == '_')
        {
            name.push(c);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.offset();
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.ex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        let missing_brace = || ExpandError::new(start, "syntax error: missing '}'");
        match self.peek() {
            None => return Err(missing_brace()),
            Some('{' | '}' | ':') => {
                return Err(ExpandError::new(start, "syntax error: bad substitution"))
            }
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(missing_brace()),
            Some('}') => Ok(match self.get(&name) {
                Some(v) => v,
                None if self.ex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let modifier = self.next().ok_or_else(missing_brace)?;
                self.modifier(start, &name, modifier, true)
            }
            Some(m @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(start, &name, m, false),
            Some('/') => self.replace(start, &name),
            Some(c) => Err(ExpandError::new(
                start,
                format!("unsupported modifier ({c}) in substitution"),
            )),
        }
    }

    fn modifier(
        &mut self,
        start: usize,
        name: &str,
        m: char,
        null_is_unset: bool,
    ) -> Result<String, ExpandError> {
        let raw = m == '#' || m == '%';
        let (word, _) = self.until(Some('}'), raw).map_err(|e| {
            if self.peek().is_none() {
                ExpandError::new(start, "syntax error: missing '}'")
            } else {
                e
            }
        })?;
        let colon = if null_is_unset { ":" } else { "" };
        let value = self.get(name);
        if value.is_none() && self.ex.skip_unset {
            return Ok(format!("${{{name}{colon}{m}{word}}}"));
        }
        let set = value.is_some();
        let value = value.unwrap_or_default();
        let empty = null_is_unset && value.is_empty();
        match m {
            '-' => Ok(if !set || empty { word } else { value }),
            '+' => Ok(if !set || empty { String::new() } else { word }),
            '?' => {
                if self.ex.check_only {
                    return Ok(value);
                }
                let fail = |default: &str| {
                    let msg = if word.is_empty() { default } else { &word };
                    Err(ExpandError::new(start, format!("{name}: {msg}")))
                };
                if !set {
                    fail("is not allowed to be unset")
                } else if empty {
                    fail("is not allowed to be empty")
                } else {
                    Ok(value)
                }
            }
            '#' | '%' => {
                let (greedy, pat) = match word.strip_prefix(m) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pat = Pattern::parse(pat).map_err(|e| {
                    ExpandError::new(
                        start,
                        format!("invalid pattern ({pat}) in substitution: {e}"),
                    )
                })?;
                Ok(if m == '#' {
                    pat.trim_prefix(&value, greedy)
                } else {
                    pat.trim_suffix(&value, greedy)
                })
            }
            other => Err(ExpandError::new(
                start,
                format!("unsupported modifier ({colon}{other}) in substitution"),
            )),
        }
    }

    fn replace(&mut self, start: usize, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) = self.until(Some('/'), true).map_err(|e| {
            if self.peek().is_none() {
                ExpandError::new(start, "syntax error: missing '/' in ${}")
            } else {
                e
            }
        })?;
        let (replacement, _) = self.until(Some('}'), true).map_err(|e| {
            if self.peek().is_none() {
                ExpandError::new(start, "syntax error: missing '}'")
            } else {
                e
            }
        })?;
        let value = self.get(name);
        if value.is_none() && self.ex.skip_unset {
            let slash = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slash}{pattern}/{replacement}}}"));
        }
        let pat = Pattern::parse(&pattern).map_err(|e| {
            ExpandError::new(
                start,
                format!("invalid pattern ({pattern}) in substitution: {e}"),
            )
        })?;
        Ok(pat.replace(&value.unwrap_or_default(), &replacement, all))
    }
}

/// A shell pattern of `${v#p}` and friends: `*`, `?` and `\`-escaped literals.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

struct Pattern(Vec<Tok>);

impl Pattern {
    fn parse(p: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match it.peek() {
                    // `\}` and `\/` were needed to write the pattern inside ${}; the
                    // backslash is not part of the pattern.
                    Some('}' | '/') => {}
                    Some(&e @ ('*' | '?' | '\\')) => {
                        it.next();
                        toks.push(Tok::Lit(e));
                    }
                    Some(&e) => return Err(format!("invalid escape '\\{e}'")),
                    None => return Err("invalid escape at end of pattern".to_string()),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whole-string match; `*` backtracks only to the last star seen, which is enough for
    /// patterns without character classes and keeps matching linear in practice.
    fn matches(&self, s: &[char]) -> bool {
        let p = &self.0;
        let (mut pi, mut si) = (0, 0);
        let mut last_star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(Tok::Star) => {
                    last_star = Some((pi, si));
                    pi += 1;
                }
                Some(Tok::Any) => {
                    pi += 1;
                    si += 1;
                }
                Some(Tok::Lit(c)) if *c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                _ => match last_star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        last_star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        while p.get(pi) == Some(&Tok::Star) {
            pi += 1;
        }
        pi == p.len()
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=v.len()).rev())
        } else {
            Box::new(0..=v.len())
        };
        match ends.find(|&k| self.matches(&v[..k])) {
            Some(k) => v[k..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new(0..=v.len())
        } else {
            Box::new((0..=v.len()).rev())
        };
        match starts.find(|&k| self.matches(&v[k..])) {
            Some(k) => v[..k].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the leftmost longest match (or every non-overlapping one).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            if replaced && !all {
                break;
            }
            let found = (i..=v.len()).rev().find(|&j| self.matches(&v[i..j]));
            match found {
                Some(j) => {
                    out.push_str(replacement);
                    replaced = true;
                    if j == i {
                        if let Some(c) = v.get(i) {
                            out.push(*c);
                        }
                        i += 1;
                    } else {
                        i = j;
                    }
                }
                None => {
                    if let Some(c) = v.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                }
            }
        }
        if i < v.len() {
            out.extend(&v[i..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("a", "x y"), ("e", ""), ("p", "/usr/local/bin.tar.gz")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn modifiers() -> Result<(), ExpandError> {
        let v = vars();
        let cases = [
            ("${a:-d}", "x y"),
            ("${e:-d}", "d"),
            ("${e-d}", ""),
            ("${u-d}", "d"),
            ("${a:+s}", "s"),
            ("${e:+s}", ""),
            ("${e+s}", "s"),
            ("${u+s}", ""),
            ("${p#*/}", "usr/local/bin.tar.gz"),
            ("${p##*/}", "bin.tar.gz"),
            ("${p%.*}", "/usr/local/bin.tar"),
            ("${p%%.*}", "/usr/local/bin"),
            ("${p/l/L}", "/usr/Local/bin.tar.gz"),
            ("${p//l/L}", "/usr/LocaL/bin.tar.gz"),
            ("${u:-${a}}", "x y"),
            ("${u:-'q w'}", "q w"),
            ("${p#*l*l}", "/bin.tar.gz"),
            ("${p%?.*z}", "/usr/local/bin.ta"),
        ];
        for (word, want) in cases {
            assert_eq!(expand(word, &v)?, want, "{word}");
        }
        Ok(())
    }

    #[test]
    fn words_split_after_expansion() -> Result<(), ExpandError> {
        let v = vars();
        assert_eq!(
            expand_words("$a 'b c' \"$a\"", &v)?,
            ["x", "y", "b c", "x y"]
        );
        assert_eq!(expand_words("  ", &v)?, Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn tracks_variables() -> Result<(), ExpandError> {
        let e = Expander::default().process("$a ${u:-x} $e", &vars())?;
        assert_eq!(e.matched.into_iter().collect::<Vec<_>>(), ["a", "e"]);
        assert_eq!(e.unmatched.into_iter().collect::<Vec<_>>(), ["u"]);
        Ok(())
    }

    #[test]
    fn required_variable() {
        let err = expand("ab${u:?need u}", &vars()).err();
        assert_eq!(err, Some(ExpandError::new(2, "u: need u")));
        let err = expand("${e:?}", &vars()).err();
        assert_eq!(
            err,
            Some(ExpandError::new(0, "e: is not allowed to be empty"))
        );
        assert_eq!(Expander::default().check("${u?}"), Ok(()));
    }

    #[test]
    fn keep_unset_and_quotes() -> Result<(), ExpandError> {
        let ex = Expander::default().keep_unset().keep_quotes();
        assert_eq!(
            ex.word("$u ${u} ${u:-x} '$a'", &vars())?,
            "$u ${u} ${u:-x} '$a'"
        );
        Ok(())
    }

    #[test]
    fn heredoc_body_keeps_quotes() -> Result<(), ExpandError> {
        let ex = Expander::heredoc_body();
        assert_eq!(
            ex.word("echo \"$a\" '$e' \\$a", &vars())?,
            "echo \"x y\" '' $a"
        );
        Ok(())
    }

    #[test]
    fn bad_pattern_escape() {
        let err = expand("${p#\\x}", &vars()).err().map(|e| e.message);
        assert_eq!(
            err.as_deref(),
            Some("invalid pattern (\\x) in substitution: invalid escape '\\x'")
        );
    }
}
