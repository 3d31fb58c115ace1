//! Parser directives: `# syntax=`, `# escape=` and `# check=` comment lines at the very top
//! of a Dockerfile. Directive parsing stops at the first line that is not a known directive
//! (an empty line, another comment, an instruction).

/// The directives found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=`: recorded; skiff always uses its own frontend.
    pub syntax: Option<String>,
    /// `# escape=`: the escape character, `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=`: build check options.
    pub check: Option<CheckDirective>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// `# check=skip=RuleA,RuleB;error=true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckDirective {
    /// Rules to skip; `["all"]` skips every check.
    pub skip: Vec<String>,
    /// Whether check violations fail the build.
    pub error: bool,
}

impl CheckDirective {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut out = CheckDirective::default();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, val) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid check option {part:?}, expected key=value"))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    out.skip = val
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                }
                "error" => {
                    out.error = parse_bool(val.trim())
                        .ok_or_else(|| format!("invalid value for check option error: {val:?}"))?;
                }
                other => return Err(format!("unknown check option {other:?}")),
            }
        }
        Ok(out)
    }
}

/// Go's strconv.ParseBool, which BuildKit uses for flag and mount values.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A directive error: 0-based line index, byte offset in that line, message.
pub(crate) type DirectiveError = (usize, usize, String);

/// Reads the directives from the top of `lines`.
pub(crate) fn parse(lines: &[&str]) -> Result<Directives, DirectiveError> {
    let mut d = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    for (idx, line) in lines.iter().enumerate() {
        let Some((name, name_at, value, value_at)) = match_directive(line) else {
            break;
        };
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        if seen.contains(&key) {
            return Err((
                idx,
                name_at,
                format!("only one {key} parser directive can be used"),
            ));
        }
        seen.push(key.clone());
        match key.as_str() {
            "syntax" => d.syntax = Some(value.to_string()),
            "escape" => {
                d.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err((
                            idx,
                            value_at,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ))
                    }
                }
            }
            _ => d.check = Some(CheckDirective::parse(value).map_err(|e| (idx, value_at, e))?),
        }
    }
    Ok(d)
}

/// Matches `^\s*#[ \t]*NAME[ \t]*=[ \t]*VALUE[ \t]*$` where NAME is a letter followed by
/// letters and digits and VALUE is not empty; returns name and value with their offsets.
fn match_directive(line: &str) -> Option<(&str, usize, &str, usize)> {
    let body = line.trim_start().strip_prefix('#')?;
    let blank = |c: char| c == ' ' || c == '\t';
    let after_hash = body.trim_start_matches(blank);
    let name_len = after_hash
        .char_indices()
        .find(|&(i, c)| {
            if i == 0 {
                !c.is_ascii_alphabetic()
            } else {
                !c.is_ascii_alphanumeric()
            }
        })
        .map_or(after_hash.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &after_hash[..name_len];
    let name_at = line.len() - after_hash.len();
    let rest = after_hash[name_len..]
        .trim_start_matches(blank)
        .strip_prefix('=')?;
    let value = rest.trim_matches(blank);
    if value.is_empty() {
        return None;
    }
    let value_at = line.len() - rest.trim_start_matches(blank).len();
    Some((name, name_at, value, value_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_until_first_non_directive() {
        let d = parse(&[
            "# syntax=docker/dockerfile:1",
            "#escape=`",
            "# check=skip=all",
            "# escape=\\",
        ]);
        // The fourth line repeats escape: an error at its name.
        assert_eq!(
            d,
            Err((
                3,
                2,
                "only one escape parser directive can be used".to_string()
            ))
        );
        let d = parse(&["# syntax = x", "", "# escape=`"]).ok();
        assert_eq!(
            d,
            Some(Directives {
                syntax: Some("x".into()),
                ..Directives::default()
            })
        );
    }

    #[test]
    fn bad_escape() {
        assert_eq!(
            parse(&["# escape=x"]),
            Err((
                0,
                9,
                "invalid escape token 'x' does not match ` or \\".to_string()
            ))
        );
    }

    #[test]
    fn check_options() {
        assert_eq!(
            CheckDirective::parse("skip=A,B;error=true"),
            Ok(CheckDirective {
                skip: vec!["A".into(), "B".into()],
                error: true
            })
        );
        assert!(CheckDirective::parse("nope=1").is_err());
    }
}
