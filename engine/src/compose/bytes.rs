//! Byte values as compose (docker's units) reads them: a number of bytes, or
//! `{amount}{unit}` with units b, k, m, g, t, p (any case, optional `b`/`ib`),
//! all powers of 1024: `512m`, `1.5g`, `1GiB`, `2048`.

use serde_yaml::Value;

/// Parses a byte value (a YAML number or string).
pub(crate) fn parse_value(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("invalid byte value {n}: must be a whole, positive number")),
        Value::String(s) => parse(s),
        other => Err(format!(
            "must be a byte value like \"512m\", not {}",
            super::yaml::kind(other)
        )),
    }
}

pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid byte value {text:?}: use a number with an optional unit (b, k, m, g, t, p)"
        )
    };
    let s = text.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_len);
    if num.is_empty() {
        return Err(bad());
    }
    let amount: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut chars = unit.chars();
    let power = match chars.next() {
        None => 0,
        Some('b') if unit == "b" => 0,
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        _ => return Err(bad()),
    };
    let suffix: String = chars.collect();
    if power > 0 && !matches!(suffix.as_str(), "" | "b" | "i" | "ib") {
        return Err(bad());
    }
    let bytes = amount * 1024f64.powi(power);
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("2048"), Ok(2048));
        assert_eq!(parse("100b"), Ok(100));
        assert_eq!(parse("1k"), Ok(1024));
        assert_eq!(parse("512m"), Ok(512 << 20));
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("1gb"), Ok(1 << 30));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("1.5g"), Ok(3 << 29));
        assert_eq!(parse("64 MB"), Ok(64 << 20));
        assert_eq!(parse_value(&Value::from(4096)), Ok(4096));
        assert!(parse("1x").is_err());
        assert!(parse("m").is_err());
        assert!(parse("1mm").is_err());
        assert!(parse_value(&Value::from(-1)).is_err());
    }
}
