//! `.dockerignore`: which context paths a build may not see. One pattern per line; `#` at the
//! start of a line is a comment; `!` re-includes; `*` and `?` stay within one path element,
//! `**` spans any number of them, `[...]` is a character class, `\` escapes. Patterns are
//! cleaned like paths (`./a/` is `a`, a leading `/` is dropped). A path is excluded when
//! the last pattern that matches it or one of its parent directories is not a `!` pattern.

use std::path::{Path, PathBuf};

use super::error::IgnoreError;

/// The ignore file that applies to a build: `<Dockerfile name>.dockerignore` beside the
/// Dockerfile wins over the context's `.dockerignore`.
pub fn find_dockerignore(context: &Path, dockerfile: &Path) -> Option<PathBuf> {
    let specific = dockerfile.file_name().map(|name| {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        dockerfile.with_file_name(n)
    });
    specific
        .into_iter()
        .chain(std::iter::once(context.join(".dockerignore")))
        .find(|p| p.is_file())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: nothing, or anything ending in `/`.
    AnyDirs,
    /// `**` at the end: anything.
    AnyRest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    exclusion: bool,
    toks: Vec<Tok>,
    /// BuildKit matches a pattern that starts with `**` and has no other wildcard as a plain
    /// suffix test; kept so the same files are excluded.
    suffix: Option<String>,
}

/// Compiled .dockerignore patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Reads the ignore file that applies (see [`find_dockerignore`]); none means empty.
    pub fn load(context: &Path, dockerfile: &Path) -> Result<(Self, Option<PathBuf>), IgnoreError> {
        let Some(path) = find_dockerignore(context, dockerfile) else {
            return Ok((DockerIgnore::default(), None));
        };
        let text = std::fs::read_to_string(&path).map_err(|source| IgnoreError::Io {
            file: path.clone(),
            source,
        })?;
        let ignore = DockerIgnore::parse(&path.display().to_string(), &text)?;
        Ok((ignore, Some(path)))
    }

    /// Parses the text of an ignore file; `name` is what errors call it.
    pub fn parse(name: &str, text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line_pat = line.trim();
            if line_pat.is_empty() {
                continue;
            }
            let (exclusion, body) = match line_pat.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line_pat),
            };
            let err = |message: &str| IgnoreError::Pattern {
                file: name.to_string(),
                line: idx + 1,
                pattern: line.to_string(),
                message: message.to_string(),
            };
            if body.is_empty() {
                return Err(err("illegal exclusion pattern"));
            }
            let mut cleaned = clean(body);
            if cleaned.len() > 1 {
                if let Some(rest) = cleaned.strip_prefix('/') {
                    cleaned = rest.to_string();
                }
            }
            patterns.push(Pattern::compile(&cleaned, exclusion).map_err(|m| err(&m))?);
        }
        Ok(DockerIgnore { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns, `!` kept.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| format!("{}{}", if p.exclusion { "!" } else { "" }, p.text))
            .collect()
    }

    /// Whether any `!` pattern exists.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether a context-relative path (with `/` separators) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path);
        // Parent directories are the prefixes of the path that end before a `/`.
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An exclusion can only change an excluded path and vice versa.
            if p.exclusion != excluded {
                continue;
            }
            let hit = p.matches(&path) || parents.iter().any(|d| !d.is_empty() && p.matches(d));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether something below directory `dir` might be included even though `dir` itself is
    /// excluded: a walker may skip an excluded directory when this is false.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = clean(dir);
        let below = format!("{dir}/");
        let ancestors: Vec<String> = {
            let parts: Vec<&str> = dir.split('/').collect();
            (1..=parts.len()).map(|n| parts[..n].join("/")).collect()
        };
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| ancestors.iter().any(|a| p.matches(a)) || p.could_match_with_prefix(&below))
    }
}

impl Pattern {
    fn compile(text: &str, exclusion: bool) -> Result<Pattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        let mut wildcard_after_lead = false;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        toks.push(Tok::AnyRest);
                    } else {
                        toks.push(Tok::AnyDirs);
                    }
                    if toks.len() > 1 {
                        wildcard_after_lead = true;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    wildcard_after_lead = true;
                }
                '?' => {
                    toks.push(Tok::One);
                    wildcard_after_lead = true;
                }
                '\\' => {
                    wildcard_after_lead = true;
                    match chars.get(i) {
                        Some(&e) => {
                            i += 1;
                            toks.push(Tok::Lit(e));
                        }
                        None => return Err("syntax error in pattern (trailing \\)".to_string()),
                    }
                }
                '[' => {
                    wildcard_after_lead = true;
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        let Some(&c) = chars.get(i) else {
                            return Err("syntax error in pattern (unclosed [)".to_string());
                        };
                        i += 1;
                        if c == ']' && !ranges.is_empty() {
                            break;
                        }
                        if c == ']' {
                            return Err("syntax error in pattern (empty [])".to_string());
                        }
                        let lo = if c == '\\' {
                            let Some(&e) = chars.get(i) else {
                                return Err("syntax error in pattern (unclosed [)".to_string());
                            };
                            i += 1;
                            e
                        } else {
                            c
                        };
                        let hi = if chars.get(i) == Some(&'-') && chars.get(i + 1) != Some(&']') {
                            let Some(&h) = chars.get(i + 1) else {
                                return Err("syntax error in pattern (unclosed [)".to_string());
                            };
                            i += 2;
                            h
                        } else {
                            lo
                        };
                        if hi < lo {
                            return Err("syntax error in pattern (bad range)".to_string());
                        }
                        ranges.push((lo, hi));
                    }
                    toks.push(Tok::Class { negated, ranges });
                }
                ']' => {
                    wildcard_after_lead = true;
                    toks.push(Tok::Lit(']'));
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        let suffix =
            (text.starts_with("**") && !wildcard_after_lead).then(|| text[2..].to_string());
        Ok(Pattern {
            text: text.to_string(),
            exclusion,
            toks,
            suffix,
        })
    }

    fn matches(&self, path: &str) -> bool {
        if let Some(suffix) = &self.suffix {
            return path.ends_with(suffix.as_str())
                || suffix.strip_prefix('/').is_some_and(|s| s == path);
        }
        Matcher::new(&self.toks, path, false).at(0, 0)
    }

    /// Whether `prefix` followed by some text could match.
    fn could_match_with_prefix(&self, prefix: &str) -> bool {
        if self.suffix.is_some() {
            return true;
        }
        Matcher::new(&self.toks, prefix, true).at(0, 0)
    }
}

fn class_has(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated
}

/// Backtracking glob matcher over a path. With two or more star-like tokens it remembers
/// failed (token, position) states, so no pattern can make it take exponential time.
struct Matcher<'a> {
    toks: &'a [Tok],
    s: &'a str,
    /// Prefix mode: running out of text means the pattern could still match.
    prefix: bool,
    failed: Option<std::collections::HashSet<(usize, usize)>>,
}

impl<'a> Matcher<'a> {
    fn new(toks: &'a [Tok], s: &'a str, prefix: bool) -> Self {
        let stars = toks
            .iter()
            .filter(|t| matches!(t, Tok::Star | Tok::AnyDirs))
            .count();
        Matcher {
            toks,
            s,
            prefix,
            failed: (stars >= 2).then(Default::default),
        }
    }

    fn at(&mut self, ti: usize, si: usize) -> bool {
        if self.failed.as_ref().is_some_and(|f| f.contains(&(ti, si))) {
            return false;
        }
        let ok = self.step(ti, si);
        if !ok {
            if let Some(f) = &mut self.failed {
                f.insert((ti, si));
            }
        }
        ok
    }

    fn step(&mut self, ti: usize, si: usize) -> bool {
        let rest = &self.s[si..];
        if self.prefix && rest.is_empty() {
            return true;
        }
        let Some(tok) = self.toks.get(ti) else {
            return rest.is_empty();
        };
        let first = rest.chars().next();
        let one = |ok: bool| ok.then(|| first.map_or(0, char::len_utf8));
        let advance = match tok {
            Tok::Lit(c) => one(first == Some(*c)),
            Tok::One => one(first.is_some_and(|c| c != '/')),
            Tok::Class { negated, ranges } => {
                one(first.is_some_and(|c| class_has(*negated, ranges, c)))
            }
            Tok::Star => {
                let run = rest.find('/').unwrap_or(rest.len());
                for (i, _) in rest[..run].char_indices() {
                    if self.at(ti + 1, si + i) {
                        return true;
                    }
                }
                return self.at(ti + 1, si + run);
            }
            Tok::AnyDirs => {
                // In prefix mode `.*` may swallow the rest of the text.
                if self.prefix || self.at(ti + 1, si) {
                    return true;
                }
                let slashes: Vec<usize> = rest.match_indices('/').map(|(i, _)| i).collect();
                return slashes.into_iter().any(|i| self.at(ti + 1, si + i + 1));
            }
            Tok::AnyRest => return true,
        };
        advance.is_some_and(|n| self.at(ti + 1, si + n))
    }
}

/// Lexical path cleaning as Go's path.Clean: no `.` elements, `..` resolved, single slashes,
/// no trailing slash; an empty result is `.`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|&l| l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go() {
        for (i, o) in [
            ("a/b/", "a/b"),
            ("./a", "a"),
            ("a//b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("", "."),
            ("./", "."),
            ("/", "/"),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    #[test]
    fn classes() -> Result<(), String> {
        let p = Pattern::compile("f[a-c]o[^x]", false)?;
        assert!(p.matches("fboy"));
        assert!(!p.matches("fdoy"));
        assert!(!p.matches("fbox"));
        assert!(Pattern::compile("a[", false).is_err());
        assert!(Pattern::compile("a\\", false).is_err());
        Ok(())
    }

    #[test]
    fn no_exponential_backtracking() -> Result<(), String> {
        let p = Pattern::compile("*a*a*a*a*a*a*a*a*a*a*a*a*b", false)?;
        let long = "a".repeat(200);
        assert!(!p.matches(&long));
        let p = Pattern::compile("**/a/**/a/**/a/**/a/**/b", false)?;
        assert!(!p.matches(&"a/".repeat(100)));
        Ok(())
    }
}
