//! Reading typed values out of YAML with errors that name the file and the
//! field's path. A mapping's keys are checked against the fields compose
//! allows there: `x-` extensions are skipped, fields of the specification
//! that skiffctl does not implement are an error saying so, anything else is
//! an unknown field. Nothing is dropped silently.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::error::{index, join, ComposeError, Result};
use super::yaml::{describe, key_string, kind, scalar_string};

/// Where values are read from: the file's name for errors, and warnings.
pub(crate) struct Reader<'w> {
    pub(crate) file: String,
    pub(crate) warnings: &'w mut Vec<String>,
}

/// What a mapping may hold.
pub(crate) struct Spec {
    /// Fields read by the caller.
    pub(crate) known: &'static [&'static str],
    /// Specification fields skiffctl rejects (they would change what runs).
    pub(crate) unsupported: &'static [&'static str],
    /// Specification fields without an effect here (a warning names them).
    pub(crate) ignored: &'static [&'static str],
}

/// The known fields of one mapping, null values left out (null means unset).
pub(crate) struct Fields<'v> {
    pub(crate) path: String,
    values: BTreeMap<&'static str, &'v Value>,
}

impl<'v> Fields<'v> {
    pub(crate) fn get(&self, name: &str) -> Option<&'v Value> {
        self.values.get(name).copied()
    }

    pub(crate) fn path(&self, name: &str) -> String {
        join(&self.path, name)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

impl Reader<'_> {
    pub(crate) fn err(&self, path: &str, message: impl Into<String>) -> ComposeError {
        ComposeError::field(&self.file, path, message)
    }

    pub(crate) fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }

    pub(crate) fn mapping<'v>(&self, value: &'v Value, path: &str) -> Result<&'v Mapping> {
        match value {
            Value::Mapping(m) => Ok(m),
            other => Err(self.err(path, format!("must be a mapping, not {}", kind(other)))),
        }
    }

    /// Checks a mapping's keys against `spec` and returns its known fields.
    pub(crate) fn fields<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        spec: &Spec,
    ) -> Result<Fields<'v>> {
        let map = self.mapping(value, path)?;
        let mut values = BTreeMap::new();
        for (k, v) in map {
            let key = key_string(k).ok_or_else(|| {
                self.err(
                    path,
                    format!("field names must be strings, not {}", kind(k)),
                )
            })?;
            if key.starts_with("x-") {
                continue;
            }
            if let Some(name) = spec.known.iter().find(|n| **n == key) {
                if !v.is_null() {
                    values.insert(*name, v);
                }
            } else if spec.unsupported.contains(&key.as_str()) {
                return Err(self.err(
                    &join(path, &key),
                    format!("{key:?} is not supported by skiffctl"),
                ));
            } else if spec.ignored.contains(&key.as_str()) {
                self.warn(format!(
                    "{}: {}: {key:?} has no effect with skiffctl and is ignored",
                    self.file,
                    join(path, &key)
                ));
            } else {
                return Err(self.err(&join(path, &key), format!("unknown field {key:?}")));
            }
        }
        Ok(Fields {
            path: path.to_owned(),
            values,
        })
    }

    pub(crate) fn string(&self, value: &Value, path: &str) -> Result<String> {
        match value {
            Value::Mapping(_) | Value::Sequence(_) | Value::Null | Value::Tagged(_) => {
                Err(self.err(path, format!("must be a string, not {}", kind(value))))
            }
            other => Ok(scalar_string(other).unwrap_or_default()),
        }
    }

    pub(crate) fn opt_string(&self, f: &Fields, name: &str) -> Result<Option<String>> {
        f.get(name)
            .map(|v| self.string(v, &f.path(name)))
            .transpose()
    }

    /// Booleans; after interpolation they may be strings (`${DEBUG:-false}`),
    /// read with YAML 1.1's words as compose does.
    pub(crate) fn bool(&self, value: &Value, path: &str) -> Result<bool> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Ok(true),
                "false" | "no" | "n" | "off" => Ok(false),
                _ => Err(self.err(path, format!("must be a boolean, not {s:?}"))),
            },
            other => Err(self.err(path, format!("must be a boolean, not {}", describe(other)))),
        }
    }

    pub(crate) fn opt_bool(&self, f: &Fields, name: &str) -> Result<Option<bool>> {
        f.get(name).map(|v| self.bool(v, &f.path(name))).transpose()
    }

    pub(crate) fn flag(&self, f: &Fields, name: &str) -> Result<bool> {
        Ok(self.opt_bool(f, name)?.unwrap_or(false))
    }

    pub(crate) fn i64(&self, value: &Value, path: &str) -> Result<i64> {
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.err(
                path,
                format!("must be a whole number, not {}", describe(value)),
            )
        })
    }

    pub(crate) fn u64(&self, value: &Value, path: &str) -> Result<u64> {
        let n = self.i64(value, path)?;
        u64::try_from(n).map_err(|_| self.err(path, format!("must not be negative, not {n}")))
    }

    pub(crate) fn f64(&self, value: &Value, path: &str) -> Result<f64> {
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed
            .filter(|f: &f64| f.is_finite())
            .ok_or_else(|| self.err(path, format!("must be a number, not {}", describe(value))))
    }

    /// Permission bits: a YAML number as it is (`0o440` is octal in YAML 1.2),
    /// text as octal (`"0440"`, and `0440`, which YAML 1.2 leaves a string).
    pub(crate) fn mode(&self, value: &Value, path: &str) -> Result<u32> {
        let parsed = match value {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            // Written as text, a mode is octal ("0440", "1777", "0o440").
            Value::String(s) => {
                let s = s.trim();
                u32::from_str_radix(s.strip_prefix("0o").unwrap_or(s), 8).ok()
            }
            _ => None,
        };
        parsed
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| self.err(path, format!("invalid file mode {}", describe(value))))
    }

    pub(crate) fn seq<'v>(&self, value: &'v Value, path: &str) -> Result<&'v Vec<Value>> {
        match value {
            Value::Sequence(s) => Ok(s),
            other => Err(self.err(path, format!("must be a list, not {}", kind(other)))),
        }
    }

    pub(crate) fn string_list(&self, value: &Value, path: &str) -> Result<Vec<String>> {
        self.seq(value, path)?
            .iter()
            .enumerate()
            .map(|(i, v)| self.string(v, &index(path, i)))
            .collect()
    }

    /// A list of strings, or one string standing for a list of one (dns, tmpfs...).
    pub(crate) fn string_or_list(&self, value: &Value, path: &str) -> Result<Vec<String>> {
        match value {
            Value::Sequence(_) => self.string_list(value, path),
            other => Ok(vec![self.string(other, path)?]),
        }
    }

    pub(crate) fn opt_list(&self, f: &Fields, name: &str) -> Result<Vec<String>> {
        f.get(name)
            .map(|v| self.string_list(v, &f.path(name)))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// A mapping of strings to strings (labels, sysctls, driver_opts...).
    pub(crate) fn string_map(&self, value: &Value, path: &str) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (k, v) in self.mapping(value, path)? {
            let key = key_string(k)
                .ok_or_else(|| self.err(path, format!("keys must be strings, not {}", kind(k))))?;
            let item = join(path, &key);
            let value = match v {
                Value::Null => String::new(),
                other => self.string(other, &item)?,
            };
            out.insert(key, value);
        }
        Ok(out)
    }

    pub(crate) fn opt_map(&self, f: &Fields, name: &str) -> Result<BTreeMap<String, String>> {
        f.get(name)
            .map(|v| self.string_map(v, &f.path(name)))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// A mapping whose values may be null (environment, build args).
    pub(crate) fn optional_map(
        &self,
        value: &Value,
        path: &str,
    ) -> Result<BTreeMap<String, Option<String>>> {
        let mut out = BTreeMap::new();
        for (k, v) in self.mapping(value, path)? {
            let key = key_string(k)
                .ok_or_else(|| self.err(path, format!("keys must be strings, not {}", kind(k))))?;
            let item = join(path, &key);
            let value = match v {
                Value::Null => None,
                other => Some(self.string(other, &item)?),
            };
            out.insert(key, value);
        }
        Ok(out)
    }
}
