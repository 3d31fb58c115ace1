//! Variable interpolation with compose's rules: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! `${VAR:+alt}`, `${VAR+alt}`, nested `${...}` inside the word, and `$$` for
//! a literal `$`. An unset variable without a default becomes "" with a
//! warning; any other `$` use is an invalid template (an error, as in compose).

use std::collections::BTreeSet;

use serde_yaml::Value;

use super::error::{index, join, ComposeError, Result};

/// Where variables come from, and the warnings interpolation leaves.
pub(crate) struct Interpolator<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    warned: BTreeSet<String>,
    pub(crate) warnings: Vec<String>,
}

impl<'a> Interpolator<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Interpolator {
            lookup,
            warned: BTreeSet::new(),
            warnings: Vec::new(),
        }
    }

    /// Substitutes the variables of one string. The error is the message alone;
    /// callers add the file and path.
    pub(crate) fn substitute(&mut self, template: &str) -> std::result::Result<String, String> {
        self.expand(template, template)
    }

    fn expand(&mut self, s: &str, whole: &str) -> std::result::Result<String, String> {
        let invalid = || format!("invalid interpolation format in {whole:?}");
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let mut chars = after.chars();
            match chars.next() {
                Some('$') => {
                    out.push('$');
                    rest = &after[1..];
                }
                Some('{') => {
                    let close = closing_brace(after).ok_or_else(invalid)?;
                    let inner = &after[1..close];
                    out.push_str(&self.braced(inner, whole)?);
                    rest = &after[close + 1..];
                }
                Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                    let len = name_len(after);
                    let name = &after[..len];
                    out.push_str(&self.value_or_warn(name));
                    rest = &after[len..];
                }
                // `$` alone, `$ `, `$1`...: compose rejects the whole template.
                _ => return Err(invalid()),
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The inside of `${...}`: a name, then nothing or an operator and its word.
    fn braced(&mut self, inner: &str, whole: &str) -> std::result::Result<String, String> {
        let invalid = || format!("invalid interpolation format in {whole:?}");
        let first = inner.chars().next().ok_or_else(invalid)?;
        if !(first == '_' || first.is_ascii_alphabetic()) {
            return Err(invalid());
        }
        let len = name_len(inner);
        let name = &inner[..len];
        let op_and_word = &inner[len..];
        if op_and_word.is_empty() {
            return Ok(self.value_or_warn(name));
        }
        let (op, word) = [":-", ":?", ":+", "-", "?", "+"]
            .iter()
            .find_map(|op| op_and_word.strip_prefix(op).map(|w| (*op, w)))
            .ok_or_else(invalid)?;
        let value = (self.lookup)(name);
        let set = value.is_some();
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        // The word is expanded only when it is used, as a shell does.
        match op {
            ":-" if non_empty => Ok(value.unwrap_or_default()),
            "-" if set => Ok(value.unwrap_or_default()),
            ":-" | "-" => self.expand(word, whole),
            ":?" if non_empty => Ok(value.unwrap_or_default()),
            "?" if set => Ok(value.unwrap_or_default()),
            ":?" | "?" => {
                let message = self.expand(word, whole)?;
                if message.is_empty() {
                    Err(format!("required variable {name} is missing a value"))
                } else {
                    Err(format!(
                        "required variable {name} is missing a value: {message}"
                    ))
                }
            }
            ":+" if non_empty => self.expand(word, whole),
            "+" if set => self.expand(word, whole),
            _ => Ok(String::new()),
        }
    }

    fn value_or_warn(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                if self.warned.insert(name.to_owned()) {
                    self.warnings.push(format!(
                        "The {name:?} variable is not set. Defaulting to a blank string."
                    ));
                }
                String::new()
            }
        }
    }

    /// Interpolates every string value of a tree (keys are left alone, as in
    /// compose). `skip_extensions` leaves top-level `x-` entries untouched: they
    /// are ignored, and whatever an anchor took from them is interpolated where it lands.
    pub(crate) fn value(
        &mut self,
        value: &mut Value,
        path: &str,
        file: &str,
        skip_extensions: bool,
    ) -> Result<()> {
        match value {
            Value::String(s) => {
                if s.contains('$') {
                    *s = self
                        .substitute(s)
                        .map_err(|m| ComposeError::field(file, path, m))?;
                }
                Ok(())
            }
            Value::Mapping(m) => {
                for (k, v) in m.iter_mut() {
                    let key = super::yaml::key_string(k).unwrap_or_default();
                    if skip_extensions && key.starts_with("x-") {
                        continue;
                    }
                    self.value(v, &join(path, &key), file, false)?;
                }
                Ok(())
            }
            Value::Sequence(s) => {
                for (i, v) in s.iter_mut().enumerate() {
                    self.value(v, &index(path, i), file, false)?;
                }
                Ok(())
            }
            Value::Tagged(t) => self.value(&mut t.value, path, file, false),
            _ => Ok(()),
        }
    }
}

fn name_len(s: &str) -> usize {
    s.find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(s.len())
}

/// `s` starts with `{`; the index of the `}` that closes it, counting nested `${`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'{' if i == 0 => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(template: &str) -> (std::result::Result<String, String>, Vec<String>) {
        let env: BTreeMap<String, String> = [("SET", "value"), ("EMPTY", ""), ("OTHER", "other")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        let mut i = Interpolator::new(&lookup);
        let r = i.substitute(template);
        (r, i.warnings)
    }

    fn ok(template: &str) -> String {
        run(template).0.expect("interpolates")
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(ok("a $SET b"), "a value b");
        assert_eq!(ok("${SET}x"), "valuex");
        assert_eq!(ok("$SET-x"), "value-x");
        assert_eq!(ok("no vars"), "no vars");
        assert_eq!(ok("$SET$OTHER"), "valueother");
    }

    #[test]
    fn unset_is_blank_with_one_warning() {
        let (r, w) = run("$NOPE and ${NOPE}");
        assert_eq!(r.as_deref(), Ok(" and "));
        assert_eq!(
            w,
            vec!["The \"NOPE\" variable is not set. Defaulting to a blank string.".to_owned()]
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${NOPE:-def}"), "def");
        assert_eq!(ok("${EMPTY:-def}"), "def");
        assert_eq!(ok("${SET:-def}"), "value");
        assert_eq!(ok("${NOPE-def}"), "def");
        assert_eq!(ok("${EMPTY-def}"), "");
        assert_eq!(ok("${SET-def}"), "value");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${NOPE:-a b:c/d}"), "a b:c/d");
    }

    #[test]
    fn alternates() {
        assert_eq!(ok("${SET:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${NOPE:+alt}"), "");
        assert_eq!(ok("${SET+alt}"), "alt");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${NOPE+alt}"), "");
        assert_eq!(ok("${SET:+${OTHER}-x}"), "other-x");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("${NOPE:-${OTHER}}"), "other");
        assert_eq!(ok("${NOPE:-${NOPE2:-deep}}"), "deep");
        assert_eq!(ok("${NOPE:-${NOPE2:-${SET}}}/tail"), "value/tail");
        assert_eq!(ok("${NOPE:-$OTHER}"), "other");
        assert_eq!(ok("pre-${NOPE-${EMPTY:-x}}-post"), "pre-x-post");
        // Unused words are not evaluated: no error from the inner `:?`.
        assert_eq!(ok("${SET:-${NOPE:?never}}"), "value");
    }

    #[test]
    fn required() {
        assert_eq!(ok("${SET:?msg}"), "value");
        assert_eq!(ok("${SET?msg}"), "value");
        assert_eq!(ok("${EMPTY?msg}"), "");
        assert_eq!(
            run("${NOPE:?please set NOPE}").0,
            Err("required variable NOPE is missing a value: please set NOPE".to_owned())
        );
        assert_eq!(
            run("${EMPTY:?is empty}").0,
            Err("required variable EMPTY is missing a value: is empty".to_owned())
        );
        assert_eq!(
            run("${NOPE?}").0,
            Err("required variable NOPE is missing a value".to_owned())
        );
        assert_eq!(
            run("${NOPE?need $OTHER}").0,
            Err("required variable NOPE is missing a value: need other".to_owned())
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$$SET"), "$SET");
        assert_eq!(ok("$${SET}"), "${SET}");
        assert_eq!(ok("a$$$SET"), "a$value");
        assert_eq!(ok("${NOPE:-$$}"), "$");
    }

    #[test]
    fn invalid_templates() {
        for t in [
            "$",
            "a $ b",
            "${",
            "${}",
            "${SET",
            "${1X}",
            "${SET/a/b}",
            "$1",
            "${SET:x}",
        ] {
            let (r, _) = run(t);
            assert_eq!(
                r,
                Err(format!("invalid interpolation format in {t:?}")),
                "template {t}"
            );
        }
    }

    #[test]
    fn tree_interpolation_names_the_path() {
        let lookup = |_: &str| None;
        let mut i = Interpolator::new(&lookup);
        let mut v: Value =
            serde_yaml::from_str("services:\n  web:\n    image: \"${TAG:?set TAG}\"\n")
                .expect("yaml");
        let err = i
            .value(&mut v, "", "compose.yaml", true)
            .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "compose.yaml: services.web.image: required variable TAG is missing a value: set TAG"
        );
        let mut v: Value = serde_yaml::from_str(
            "x-ignored: ${NOPE:?not evaluated}\nlist: [\"$$a\", 1]\n\"$KEY\": v\n",
        )
        .expect("yaml");
        i.value(&mut v, "", "f", true).expect("ok");
        assert_eq!(v["list"][0], "$a");
        assert_eq!(v["$KEY"], "v");
    }
}
