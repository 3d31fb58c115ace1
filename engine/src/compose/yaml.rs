//! Reading a compose file's YAML: parse (anchors and aliases are expanded by
//! the parser), resolve `<<` merge keys, and check the only YAML tags compose
//! knows (`!reset`, `!override`). Also the small conversions from YAML
//! scalars that the rest of the model shares.

use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use super::error::{ComposeError, Result};

/// `!reset` and `!override` (compose's merge tags), as they are written.
pub(crate) const RESET: &str = "reset";
pub(crate) const OVERRIDE: &str = "override";

/// Parses one compose file into its top-level mapping, merge keys resolved.
pub(crate) fn parse_document(text: &str, file: &str) -> Result<Mapping> {
    let mut value: Value = serde_yaml::from_str(text)
        .map_err(|e| ComposeError::file(file, format!("invalid YAML: {e}")))?;
    // A merged-in mapping can carry a `<<` of its own (an anchor that itself
    // used `<<`), which one pass re-inserts into its parent: repeat until none remain.
    while has_merge_key(&value) {
        value
            .apply_merge()
            .map_err(|e| ComposeError::file(file, format!("invalid YAML merge key (<<): {e}")))?;
    }
    check_tags(&value, "", file)?;
    match value {
        Value::Mapping(m) => {
            for key in m.keys() {
                if key.as_str().is_none() {
                    return Err(ComposeError::file(
                        file,
                        format!("top-level key {} is not a string", describe(key)),
                    ));
                }
            }
            Ok(m)
        }
        Value::Null => Err(ComposeError::file(
            file,
            "empty compose file: it must be a mapping with `services` and other top-level keys",
        )),
        other => Err(ComposeError::file(
            file,
            format!(
                "a compose file must be a mapping at the top level, not {}",
                kind(&other)
            ),
        )),
    }
}

fn has_merge_key(value: &Value) -> bool {
    match value {
        Value::Mapping(m) => m.contains_key("<<") || m.values().any(has_merge_key),
        Value::Sequence(s) => s.iter().any(has_merge_key),
        Value::Tagged(t) => has_merge_key(&t.value),
        _ => false,
    }
}

/// Only compose's `!reset` and `!override` have a meaning; any other tag
/// would be silently dropped, so it is an error.
fn check_tags(value: &Value, path: &str, file: &str) -> Result<()> {
    match value {
        Value::Tagged(t) => {
            if t.tag != RESET && t.tag != OVERRIDE {
                return Err(ComposeError::field(
                    file,
                    display_path(path),
                    format!(
                        "unsupported YAML tag {}: only !reset and !override are known",
                        t.tag
                    ),
                ));
            }
            check_tags(&t.value, path, file)
        }
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = key_string(k).unwrap_or_default();
                check_tags(v, &super::error::join(path, &key), file)?;
            }
            Ok(())
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter().enumerate() {
                check_tags(v, &super::error::index(path, i), file)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(top level)"
    } else {
        path
    }
}

/// The tag of a `!reset`/`!override` value, if it has one.
pub(crate) fn merge_tag(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(t) if t.tag == RESET => Some(RESET),
        Value::Tagged(t) if t.tag == OVERRIDE => Some(OVERRIDE),
        _ => None,
    }
}

pub(crate) fn tagged(tag: &str, value: Value) -> Value {
    Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(tag),
        value,
    }))
}

/// Removes what is left of the merge tags once all files are merged:
/// `!reset` drops the entry, `!override` keeps the value as it is.
pub(crate) fn strip_merge_tags(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            m.retain(|_, v| merge_tag(v) != Some(RESET));
            for v in m.values_mut() {
                strip_merge_tags(v);
            }
        }
        Value::Sequence(s) => {
            s.retain(|v| merge_tag(v) != Some(RESET));
            for v in s.iter_mut() {
                strip_merge_tags(v);
            }
        }
        Value::Tagged(t) => {
            let mut inner = std::mem::take(&mut t.value);
            strip_merge_tags(&mut inner);
            *value = inner;
        }
        _ => {}
    }
}

/// A mapping key as text: strings as they are, numbers and booleans written out
/// (`80: ...` in a sysctls map is the key "80").
pub(crate) fn key_string(key: &Value) -> Option<String> {
    scalar_string(key)
}

/// A scalar as text, the way compose coerces YAML scalars where it expects a
/// string (`user: 1000`, `FOO: true` in environment).
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a value is, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A value quoted for an error message.
pub(crate) fn describe(value: &Value) -> String {
    match scalar_string(value) {
        Some(s) => format!("{s:?}"),
        None => kind(value).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_resolved_until_none_remain() {
        let text = "x-base: &base\n  image: busybox\n  environment: {A: '1'}\nx-more: &more\n  <<: *base\n  user: root\nservices:\n  web:\n    <<: *more\n    image: nginx\n";
        let doc = parse_document(text, "compose.yaml").expect("parses");
        let web = &doc["services"]["web"];
        assert_eq!(web["image"], "nginx");
        assert_eq!(web["user"], "root");
        assert_eq!(web["environment"]["A"], "1");
        assert!(!has_merge_key(&Value::Mapping(doc)));
    }

    #[test]
    fn merge_key_list_first_wins() {
        let text = "a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n  y: 3\n";
        let doc = parse_document(text, "f.yaml").expect("parses");
        assert_eq!(doc["c"]["x"], 1);
        assert_eq!(doc["c"]["y"], 3);
        assert_eq!(doc["c"]["z"], 2);
    }

    #[test]
    fn bad_documents_name_the_file() {
        let err = parse_document("services: [1\n", "compose.yaml").expect_err("must fail");
        assert!(
            err.to_string().starts_with("compose.yaml: invalid YAML"),
            "{err}"
        );
        let err = parse_document("", "c.yaml").expect_err("must fail");
        assert!(err.to_string().contains("empty compose file"), "{err}");
        let err = parse_document("- a\n", "c.yaml").expect_err("must fail");
        assert!(
            err.to_string().contains("mapping at the top level"),
            "{err}"
        );
        let err = parse_document("a: 1\na: 2\n", "c.yaml").expect_err("must fail");
        assert!(err.to_string().contains("duplicate"), "{err}");
        let err = parse_document("services:\n  web:\n    image: !custom x\n", "c.yaml")
            .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "c.yaml: services.web.image: unsupported YAML tag !custom: only !reset and !override are known"
        );
    }

    #[test]
    fn strip_tags() {
        let mut v: Value =
            serde_yaml::from_str("a: !reset []\nb: !override [1]\nc: {d: !reset null, e: 1}\n")
                .expect("yaml");
        strip_merge_tags(&mut v);
        let want: Value = serde_yaml::from_str("b: [1]\nc: {e: 1}\n").expect("yaml");
        assert_eq!(v, want);
    }
}
