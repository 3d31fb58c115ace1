//! Durations as compose writes them (Go's syntax): `10s`, `1m30s`, `1.5h`,
//! `500ms`, `20us`/`20µs`, `100ns`; a bare `0` is zero. A number without a
//! unit is an error, as in compose. Kept as nanoseconds.

use serde::Serializer;

const UNITS: [(&str, f64); 7] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
];

/// Parses a duration into nanoseconds (negative durations have no use here).
pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let bad = |why: &str| format!("invalid duration {text:?}: {why}");
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(bad("expected a number"));
        }
        let value: f64 = num.parse().map_err(|_| bad("not a number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(bad("missing unit (ns, us, ms, s, m or h)"));
        }
        let factor = match unit {
            "h" => 3600e9,
            _ => UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(total.round() as u64)
}

/// Formats nanoseconds the way `docker compose config` does (Go's
/// `time.Duration` text): `1m30s`, `1.5s`, `500ms`, `0s`.
pub(crate) fn format(ns: u64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", fraction(ns, 1_000_000));
    }
    let hours = ns / 3_600_000_000_000;
    let minutes = (ns / 60_000_000_000) % 60;
    let seconds_ns = ns % 60_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", fraction(seconds_ns, 1_000_000_000)));
    out
}

/// `value / unit` with the fraction's trailing zeros dropped.
fn fraction(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// serde: an optional nanosecond count written as a compose duration.
pub(crate) fn serialize_opt<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(ns) => s.serialize_str(&format(*ns)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("10s"), Ok(10_000_000_000));
        assert_eq!(parse("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("2h32m"), Ok((2 * 3600 + 32 * 60) * 1_000_000_000));
        assert_eq!(parse("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse("500ms"), Ok(500_000_000));
        assert_eq!(parse("20us"), Ok(20_000));
        assert_eq!(parse("20µs"), Ok(20_000));
        assert_eq!(parse("7ns"), Ok(7));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(
            parse("5h34m56s"),
            Ok((5 * 3600 + 34 * 60 + 56) * 1_000_000_000)
        );
    }

    #[test]
    fn rejects_bad_durations() {
        assert!(parse("10").expect_err("must fail").contains("missing unit"));
        assert!(parse("10x")
            .expect_err("must fail")
            .contains("unknown unit"));
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(10_000_000_000), "10s");
        assert_eq!(format(90_000_000_000), "1m30s");
        assert_eq!(format(1_500_000_000), "1.5s");
        assert_eq!(format(3_600_000_000_000), "1h0m0s");
        assert_eq!(format(500_000_000), "500ms");
        assert_eq!(format(1_500_000), "1.5ms");
        assert_eq!(format(20_000), "20µs");
        assert_eq!(format(7), "7ns");
        for ns in [1, 999, 1_000, 1_234_567, 61_000_000_001, 7_322_000_000_000] {
            assert_eq!(parse(&format(ns)), Ok(ns), "{ns}");
        }
    }
}
