//! `--cap-add`/`--cap-drop` over docker's default set, with docker's
//! spelling rules: names with or without `CAP_`, any case, and `ALL`.

use anyhow::{bail, Result};
use skiff_specs::security::DEFAULT_CAPABILITIES;

/// Every capability the kernel has today (for `ALL` and `--privileged`).
pub use skiff_specs::security::ALL_CAPABILITIES as ALL;

/// `net_admin` -> `CAP_NET_ADMIN`; unknown names are an error naming the flag.
fn normalize(name: &str, flag: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if !ALL.contains(&full.as_str()) {
        bail!("invalid {flag} value {name:?}: unknown capability");
    }
    Ok(full)
}

/// The container's capability set: the defaults (all of them when
/// privileged), minus drops, plus adds (an add wins over a drop, as docker).
pub fn effective(add: &[String], drop: &[String], privileged: bool) -> Result<Vec<String>> {
    let add: Vec<String> = add
        .iter()
        .map(|c| normalize(c, "--cap-add"))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize(c, "--cap-drop"))
        .collect::<Result<_>>()?;
    let base: &[&str] = if privileged || add.iter().any(|c| c == "ALL") {
        &ALL
    } else {
        &DEFAULT_CAPABILITIES
    };
    let drop_all = drop.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = base
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !drop_all && !drop.contains(c))
        .collect();
    for c in add.iter().filter(|c| *c != "ALL") {
        if !caps.contains(c) {
            caps.push(c.clone());
        }
    }
    if privileged {
        // --privileged keeps every capability whatever --cap-drop says.
        caps = ALL.iter().map(|c| c.to_string()).collect();
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn adds_drops_and_all() -> Result<()> {
        let c = effective(&s(&["net_admin"]), &s(&["CAP_CHOWN", "kill"]), false)?;
        assert!(c.contains(&"CAP_NET_ADMIN".to_owned()));
        assert!(!c.contains(&"CAP_CHOWN".to_owned()) && !c.contains(&"CAP_KILL".to_owned()));
        assert_eq!(c.len(), 13);
        assert!(effective(&[], &s(&["ALL"]), false)?.is_empty());
        assert_eq!(
            effective(&s(&["CHOWN"]), &s(&["all"]), false)?,
            s(&["CAP_CHOWN"])
        );
        assert_eq!(effective(&s(&["ALL"]), &[], false)?.len(), ALL.len());
        assert_eq!(effective(&[], &s(&["ALL"]), true)?.len(), ALL.len());
        assert!(effective(&s(&["NOPE"]), &[], false).is_err());
        Ok(())
    }
}
