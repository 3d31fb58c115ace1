//! Signal names and numbers as runc's kill accepts them: "TERM", "SIGTERM", "15", "term".

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

pub fn parse(text: &str) -> Result<Signal> {
    let t = text.trim();
    if t.is_empty() {
        bail!("invalid signal: empty string");
    }
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow::anyhow!("invalid signal number: {t}"));
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow::anyhow!("unknown signal {t:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse("sigkill").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse("9").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse("SIGUSR1").ok(), Some(Signal::SIGUSR1));
        assert!(parse("NOPE").is_err());
        assert!(parse("0x").is_err());
        assert!(parse("999").is_err());
        assert!(parse("").is_err());
    }
}
