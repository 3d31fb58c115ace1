//! Container ids (64 hex digits, as docker's) and generated names.

use std::io::Read;

/// A new random id.
pub fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The first 12 digits, as `ps` shows them.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fair",
    "fancy", "gentle", "happy", "hardy", "jolly", "keen", "kind", "lively", "lucky", "merry",
    "modest", "nimble", "noble", "patient", "plucky", "proud", "quick", "quiet", "rapid", "serene",
    "sharp", "shy", "steady", "swift", "tender", "tidy", "upbeat", "vivid", "warm", "wise",
    "witty", "zesty",
];

const NOUNS: &[&str] = &[
    "albatross",
    "anchor",
    "beacon",
    "breeze",
    "buoy",
    "canoe",
    "cove",
    "current",
    "dinghy",
    "dolphin",
    "dune",
    "estuary",
    "ferry",
    "fjord",
    "gull",
    "harbor",
    "heron",
    "inlet",
    "island",
    "jetty",
    "keel",
    "kelp",
    "lagoon",
    "lantern",
    "mast",
    "marina",
    "oar",
    "otter",
    "pelican",
    "pier",
    "puffin",
    "reef",
    "rudder",
    "sail",
    "seal",
    "shoal",
    "skiff",
    "tern",
    "tide",
    "wave",
    "wharf",
    "whale",
];

/// A docker-style `adjective_noun` name; `taken` says which are in use.
pub fn generate_name(mut taken: impl FnMut(&str) -> bool) -> std::io::Result<String> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let a = ADJECTIVES[bytes[0] as usize % ADJECTIVES.len()];
    let n = NOUNS[bytes[1] as usize % NOUNS.len()];
    let name = format!("{a}_{n}");
    if !taken(&name) {
        return Ok(name);
    }
    // docker appends a digit when the pair is taken.
    for i in 1.. {
        let candidate = format!("{name}{i}");
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    unreachable!("an unbounded loop returns")
}

/// docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() -> std::io::Result<()> {
        let id = new_id()?;
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(short(&id).len(), 12);
        let name = generate_name(|_| false)?;
        assert!(valid_name(&name), "{name}");
        let first = generate_name(|_| false)?;
        let _ = first;
        let n = generate_name(|n| !n.ends_with('3'))?;
        assert!(n.ends_with('3'), "{n}");
        for bad in ["", "a", "-x", "a/b", "a b", "../x"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name("web-1.x_y"));
        Ok(())
    }
}
