//! Quantities written by people on the command line, parsed the way runc's Go
//! libraries do: memory sizes as docker/go-units' RAMInBytes ("64m", "1.5GiB",
//! "4096") and durations as Go's time.ParseDuration ("5s", "1m30s", "250ms").

use std::time::Duration;

/// Parses a memory size; suffixes k, m, g, t, p are powers of 1024 and may be
/// followed by "i" and/or "b" in any case ("512M", "1g", "2GiB", "100b").
pub fn parse_ram(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid size {text:?}: expected a number of bytes or e.g. 64m, 1g");
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest).chars().peekable();
    let shift = match rest.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    if shift != 0 {
        rest.next();
    }
    if rest.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        rest.next();
    }
    if rest.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        rest.next();
    }
    if rest.next().is_some() {
        return Err(bad());
    }
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(format!("size {text:?} is too large"));
    }
    Ok(bytes as i64)
}

/// Parses a memory limit flag: a size, or -1 for "unlimited".
pub fn parse_limit(text: &str) -> Result<i64, String> {
    if text == "-1" {
        return Ok(-1);
    }
    parse_ram(text)
}

/// Parses a non-negative Go duration: a sequence of decimal numbers, each with
/// an optional fraction and a unit (ns, us, µs, ms, s, m, h); "0" alone is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {text:?}: {why}");
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return Err(bad("must not be negative"));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(bad("empty"));
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit (e.g. 5s, 500ms)"))?;
        let (number, after) = rest.split_at(num_end);
        if number.is_empty() || number == "." {
            return Err(bad("expected a number"));
        }
        let value: f64 = number.parse().map_err(|_| bad("expected a number"))?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        total_ns += value * scale;
        rest = next;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_ram("4096"), Ok(4096));
        assert_eq!(parse_ram("64m"), Ok(64 << 20));
        assert_eq!(parse_ram("64M"), Ok(64 << 20));
        assert_eq!(parse_ram("1g"), Ok(1 << 30));
        assert_eq!(parse_ram("2GiB"), Ok(2 << 30));
        assert_eq!(parse_ram("512 kb"), Ok(512 << 10));
        assert_eq!(parse_ram("1.5k"), Ok(1536));
        assert_eq!(parse_ram("100b"), Ok(100));
        assert_eq!(parse_limit("-1"), Ok(-1));
        for bad in [
            "", "m", "-5", "1x", "1.2.3m", "1mm", " 1m", "1m ", ".5m", "1.m",
        ] {
            assert!(parse_limit(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_ram("99999999p").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "-1s", "5x", "s", "1..5s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
