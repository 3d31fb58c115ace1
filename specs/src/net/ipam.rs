//! IP address management: netavark takes static addresses only, so the
//! store hands them out. One JSON file per network
//! (`STATE_DIR/ipam/<network id>.json`) maps each address in use to its
//! container, read and rewritten (atomically) under the store's lock, so two
//! processes never hand out the same address.
//!
//! Addresses go round-robin like docker's (the next free one after the last
//! handed out, wrapping), so a released address is not reused at once; the
//! network and broadcast addresses and the gateway are never handed out.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::NetError;
use super::fsutil;
use super::subnet::Ipv4Net;

#[derive(Serialize, Deserialize, Default, Debug)]
struct Allocations {
    #[serde(default)]
    allocated: BTreeMap<Ipv4Addr, String>,
    #[serde(default)]
    last: Option<Ipv4Addr>,
}

pub(crate) fn path(state_dir: &Path, network_id: &str) -> PathBuf {
    state_dir.join("ipam").join(format!("{network_id}.json"))
}

/// The subnet and gateway an allocation is made in, and names for errors.
pub(crate) struct Pool<'a> {
    pub network_id: &'a str,
    pub network_name: &'a str,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
}

/// Hands `container` an address of the pool (`wanted` if given and free).
/// The caller holds the store's lock.
pub(crate) fn allocate(
    state_dir: &Path,
    pool: &Pool<'_>,
    container: &str,
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, NetError> {
    let file = path(state_dir, pool.network_id);
    let mut allocs: Allocations = fsutil::read_json(&file)?.unwrap_or_default();
    let ip = match wanted {
        Some(ip) => {
            let bad = |reason: &str| NetError::InvalidAddress {
                network: pool.network_name.to_string(),
                container: container.to_string(),
                ip: ip.to_string(),
                reason: reason.to_string(),
            };
            if !pool.subnet.contains(ip) {
                return Err(bad(&format!("it is not in the subnet {}", pool.subnet)));
            }
            if !pool.subnet.is_host(ip) {
                return Err(bad("it is the network or broadcast address"));
            }
            if ip == pool.gateway {
                return Err(bad("it is the network's gateway"));
            }
            match allocs.allocated.get(&ip) {
                Some(owner) if owner != container => {
                    return Err(bad(&format!(
                        "Address already in use (by container {owner})"
                    )))
                }
                _ => ip,
            }
        }
        None => next_free(pool, &allocs).ok_or_else(|| NetError::NoAddress {
            network: pool.network_name.to_string(),
            subnet: pool.subnet.to_string(),
        })?,
    };
    allocs.allocated.insert(ip, container.to_string());
    if wanted.is_none() {
        allocs.last = Some(ip);
    }
    fsutil::write_json(&file, &allocs)?;
    Ok(ip)
}

fn next_free(pool: &Pool<'_>, allocs: &Allocations) -> Option<Ipv4Addr> {
    let first = u32::from(pool.subnet.addr()) + 1;
    let last = u32::from(pool.subnet.broadcast()).checked_sub(1)?;
    if last < first {
        return None;
    }
    let count = last - first + 1;
    let start = allocs
        .last
        .map(u32::from)
        .filter(|l| (first..=last).contains(l))
        .map_or(first, |l| if l == last { first } else { l + 1 });
    (0..count)
        .map(|i| Ipv4Addr::from(first + (start - first + i) % count))
        .find(|ip| *ip != pool.gateway && !allocs.allocated.contains_key(ip))
}

/// Gives back `ip` if `container` holds it. The caller holds the store's lock.
pub(crate) fn release(
    state_dir: &Path,
    network_id: &str,
    container: &str,
    ip: Ipv4Addr,
) -> Result<(), NetError> {
    let file = path(state_dir, network_id);
    let Some(mut allocs) = fsutil::read_json::<Allocations>(&file)? else {
        return Ok(());
    };
    if allocs
        .allocated
        .get(&ip)
        .is_some_and(|owner| owner == container)
    {
        allocs.allocated.remove(&ip);
        fsutil::write_json(&file, &allocs)?;
    }
    Ok(())
}

/// Containers holding addresses of the network.
pub(crate) fn holders(state_dir: &Path, network_id: &str) -> Result<Vec<String>, NetError> {
    let allocs: Allocations = fsutil::read_json(&path(state_dir, network_id))?.unwrap_or_default();
    Ok(allocs.allocated.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(subnet: &str) -> Pool<'static> {
        let subnet: Ipv4Net = subnet.parse().expect("net");
        Pool {
            network_id: "n1",
            network_name: "front",
            subnet,
            gateway: subnet.first_host().expect("gateway"),
        }
    }

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("ipam")).expect("mkdir");
        dir
    }

    #[test]
    fn round_robin_skips_gateway_and_wraps() {
        let dir = setup();
        let p = pool("10.0.0.0/29"); // hosts .1-.6, gateway .1
        let got: Vec<Ipv4Addr> = (0..5)
            .map(|i| allocate(dir.path(), &p, &format!("c{i}"), None).expect("alloc"))
            .collect();
        let want: Vec<Ipv4Addr> = (2..=6).map(|h| Ipv4Addr::new(10, 0, 0, h)).collect();
        assert_eq!(got, want);
        assert!(matches!(
            allocate(dir.path(), &p, "c9", None),
            Err(NetError::NoAddress { .. })
        ));
        release(dir.path(), "n1", "c1", Ipv4Addr::new(10, 0, 0, 3)).expect("release");
        // Someone else's address is not released.
        release(dir.path(), "n1", "c1", Ipv4Addr::new(10, 0, 0, 4)).expect("release");
        assert_eq!(
            allocate(dir.path(), &p, "c9", None).expect("alloc"),
            Ipv4Addr::new(10, 0, 0, 3)
        );
        assert_eq!(holders(dir.path(), "n1").expect("holders").len(), 5);
    }

    #[test]
    fn static_addresses() {
        let dir = setup();
        let p = pool("10.0.1.0/24");
        let ip = Ipv4Addr::new(10, 0, 1, 50);
        assert_eq!(allocate(dir.path(), &p, "a", Some(ip)).expect("static"), ip);
        let err = allocate(dir.path(), &p, "b", Some(ip)).expect_err("taken");
        assert!(err.to_string().contains("Address already in use"), "{err}");
        for (bad, why) in [
            (Ipv4Addr::new(10, 0, 2, 5), "not in the subnet"),
            (Ipv4Addr::new(10, 0, 1, 255), "broadcast"),
            (Ipv4Addr::new(10, 0, 1, 1), "gateway"),
        ] {
            let err = allocate(dir.path(), &p, "b", Some(bad)).expect_err("bad");
            assert!(err.to_string().contains(why), "{err}");
            assert!(err.to_string().contains("front"), "{err}");
        }
        // The next dynamic address does not collide with the static one.
        assert_eq!(
            allocate(dir.path(), &p, "b", None).expect("alloc"),
            Ipv4Addr::new(10, 0, 1, 2)
        );
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let dir = setup();
        let lock_path = dir.path().join("lock");
        let state = dir.path().to_owned();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let state = state.clone();
                let lock_path = lock_path.clone();
                std::thread::spawn(move || {
                    let p = pool("10.0.2.0/24");
                    (0..20)
                        .map(|i| {
                            // Each lock call opens the file anew: separate
                            // open file descriptions exclude each other as
                            // separate processes do.
                            let _lock = fsutil::lock(&lock_path).expect("lock");
                            allocate(&state, &p, &format!("t{t}-{i}"), None).expect("alloc")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert_eq!(n, 80);
    }
}
