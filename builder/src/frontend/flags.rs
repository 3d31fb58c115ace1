//! Builder flags (`--name=value`, `--name`) at the start of an instruction's arguments, and
//! their typed reading per instruction.

use super::suggest;

/// A flag as written, quotes removed, with its byte offset in the logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFlag {
    pub text: String,
    pub offset: usize,
}

/// An error at a byte offset of the logical line.
pub(crate) type FlagError = (usize, String);

/// Splits the leading `--flag` words off `args` (which starts at `base` in the logical line).
/// Returns the flags and the offset in `args` where the arguments proper start. A lone `--`
/// ends the flags.
pub(crate) fn extract(args: &str, base: usize) -> Result<(Vec<RawFlag>, usize), FlagError> {
    let bytes = args.as_bytes();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if !args[pos..].starts_with("--") {
            return Ok((flags, pos));
        }
        let start = pos;
        let mut word = String::new();
        let mut chars = args[pos..].char_indices().peekable();
        let mut end = args.len();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                '\'' | '"' => {
                    let mut closed = false;
                    while let Some((_, q)) = chars.next() {
                        if q == c {
                            closed = true;
                            break;
                        }
                        if q == '\\' {
                            if let Some((_, e)) = chars.next() {
                                word.push(e);
                            }
                            continue;
                        }
                        word.push(q);
                    }
                    if !closed {
                        return Err((
                            base + pos + i,
                            format!("unterminated quote in flag {}", &args[start..]),
                        ));
                    }
                }
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        word.push(e);
                    }
                }
                c => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            return Ok((flags, pos));
        }
        flags.push(RawFlag {
            text: word,
            offset: base + start,
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    /// May repeat; every value is kept.
    Strs,
}

/// The flags an instruction accepts.
pub(crate) type Spec = [(&'static str, Kind)];

/// Typed flag values of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Values {
    entries: Vec<(&'static str, Vec<String>, usize)>,
}

impl Values {
    fn get(&self, name: &str) -> Option<&(&'static str, Vec<String>, usize)> {
        self.entries.iter().find(|(n, _, _)| *n == name)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|(_, v, _)| v.last().cloned())
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|(_, v, _)| v.clone())
            .unwrap_or_default()
    }

    pub fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }

    /// Offset of the (last) occurrence of a flag in the logical line.
    pub fn offset(&self, name: &str) -> Option<usize> {
        self.get(name).map(|(_, _, o)| *o)
    }
}

pub(crate) fn parse(raw: &[RawFlag], spec: &Spec) -> Result<Values, FlagError> {
    let mut values = Values::default();
    for flag in raw {
        let body = flag.text.strip_prefix("--").unwrap_or(&flag.text);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err((
                flag.offset,
                format!("unknown flag: {name}{}", suggest::hint(name, &names)),
            ));
        };
        let err = |msg: String| Err((flag.offset, msg));
        if kind != Kind::Strs && values.get(key).is_some() {
            return err(format!("duplicate flag specified: {name}"));
        }
        let value = match (kind, value) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some("")) | (Kind::Str | Kind::Strs, None) => {
                return err(format!("missing a value on flag: {name}"))
            }
            (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => return err(format!("expecting boolean value for flag {name}, not: {v}")),
            },
            (_, Some(v)) => v.to_string(),
        };
        match values.entries.iter_mut().find(|(n, _, _)| *n == key) {
            Some(entry) => {
                entry.1.push(value);
                entry.2 = flag.offset;
            }
            None => values.entries.push((key, vec![value], flag.offset)),
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(args: &str) -> Result<(Vec<(String, usize)>, usize), FlagError> {
        extract(args, 0).map(|(f, at)| (f.into_iter().map(|f| (f.text, f.offset)).collect(), at))
    }

    #[test]
    fn extracts_leading_flags() {
        assert_eq!(
            texts("--from=a  --link --chown=\"a b\" src dst"),
            Ok((
                vec![
                    ("--from=a".into(), 0),
                    ("--link".into(), 10),
                    ("--chown=a b".into(), 17)
                ],
                31
            ))
        );
        assert_eq!(
            texts("--x=1 -- --y src"),
            Ok((vec![("--x=1".into(), 0)], 8))
        );
        assert_eq!(texts("src --x"), Ok((vec![], 0)));
        assert_eq!(
            texts("--m='a"),
            Err((4, "unterminated quote in flag --m='a".into()))
        );
    }

    #[test]
    fn typed_values() -> Result<(), FlagError> {
        const SPEC: &Spec = &[
            ("link", Kind::Bool),
            ("from", Kind::Str),
            ("exclude", Kind::Strs),
        ];
        let raw = |t: &[&str]| -> Vec<RawFlag> {
            t.iter()
                .map(|s| RawFlag {
                    text: s.to_string(),
                    offset: 3,
                })
                .collect()
        };
        let v = parse(
            &raw(&["--link=FALSE", "--exclude=a", "--exclude=b", "--from=x"]),
            SPEC,
        )?;
        assert!(!v.bool("link"));
        assert_eq!(v.strings("exclude"), ["a", "b"]);
        assert_eq!(v.string("from").as_deref(), Some("x"));
        let e = |t: &[&str]| {
            parse(&raw(t), SPEC)
                .err()
                .map(|(_, m)| m)
                .unwrap_or_default()
        };
        assert_eq!(e(&["--lnk"]), "unknown flag: lnk (did you mean link?)");
        assert_eq!(
            e(&["--from=a", "--from=b"]),
            "duplicate flag specified: from"
        );
        assert_eq!(e(&["--from"]), "missing a value on flag: from");
        assert_eq!(e(&["--link="]), "missing a value on flag: link");
        assert_eq!(
            e(&["--link=yes"]),
            "expecting boolean value for flag link, not: yes"
        );
        Ok(())
    }
}
