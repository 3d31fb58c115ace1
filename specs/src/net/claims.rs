//! Host-wide subnet claims, so that stores that do not know each other (the
//! engine's, the builder's, tests' private ones) never pick the same subnet:
//! a network's bridge, and so its route, only appears at its first connect,
//! too late for routes alone to tell.
//!
//! `HOST_DIR/subnets/<addr>_<prefix>` holds the owner (state dir and network
//! id). It is made by hard-linking a complete temp file, which fails if the
//! name exists, so two stores cannot both claim a subnet. A store writes its
//! network file before claiming and removes the claim before the file, so a
//! claim whose owner's network file is gone is stale (a crash, a deleted
//! state dir) and is removed by whoever runs into it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::NetError;
use super::fsutil::{self, TEMP_PREFIX};
use super::subnet::{Ipv4Net, Taken};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Claim {
    state_dir: PathBuf,
    network_id: String,
}

impl Claim {
    fn is_live(&self) -> bool {
        super::store::network_file(&self.state_dir, &self.network_id).exists()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Claims {
    dir: PathBuf,
}

impl Claims {
    pub(crate) fn open(host_dir: &Path) -> Result<Claims, NetError> {
        let dir = host_dir.join("subnets");
        fsutil::create_dir(&dir)?;
        Ok(Claims { dir })
    }

    fn path(&self, net: &Ipv4Net) -> PathBuf {
        self.dir.join(net.file_name())
    }

    fn read(&self, path: &Path) -> Result<Option<Claim>, NetError> {
        match fsutil::read_json::<Claim>(path) {
            Ok(c) => Ok(c),
            // A claim file is complete when it appears; garbage is stale.
            Err(NetError::Json { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Live claims of other stores; stale claims are removed on the way.
    pub(crate) fn others(&self, state_dir: &Path) -> Result<Vec<Taken>, NetError> {
        let entries = fs::read_dir(&self.dir).map_err(NetError::io("listing", &self.dir))?;
        let mut taken = Vec::new();
        for entry in entries {
            let entry = entry.map_err(NetError::io("listing", &self.dir))?;
            let name = entry.file_name();
            let Some(net) = name.to_str().and_then(Ipv4Net::from_file_name) else {
                continue;
            };
            let path = entry.path();
            match self.read(&path)? {
                Some(claim) if claim.is_live() => {
                    if claim.state_dir != state_dir {
                        taken.push(Taken {
                            net,
                            what: format!(
                                "network {} of the store {}",
                                claim.network_id,
                                claim.state_dir.display()
                            ),
                        });
                    }
                }
                Some(_) => fsutil::remove_file(&path)?,
                // Vanished meanwhile, or unreadable garbage.
                None => {
                    if path.exists() {
                        fsutil::remove_file(&path)?;
                    }
                }
            }
        }
        Ok(taken)
    }

    /// Claims `net` for the network; `false` if a live claim of someone else holds it.
    pub(crate) fn claim(
        &self,
        net: &Ipv4Net,
        state_dir: &Path,
        network_id: &str,
    ) -> Result<bool, NetError> {
        let mine = Claim {
            state_dir: state_dir.to_owned(),
            network_id: network_id.to_string(),
        };
        let bytes = serde_json::to_vec(&mine).map_err(|source| NetError::Json {
            path: self.path(net),
            source,
        })?;
        let dest = self.path(net);
        // Two tries: the second after removing a stale claim.
        for _ in 0..2 {
            let temp = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(&self.dir)
                .map_err(NetError::io("creating a temp file in", &self.dir))?;
            fs::write(temp.path(), &bytes).map_err(NetError::io("writing", temp.path()))?;
            match fs::hard_link(temp.path(), &dest) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(NetError::io("making the claim", &dest)(e)),
            }
            match self.read(&dest)? {
                Some(c) if c == mine => return Ok(true),
                Some(c) if c.is_live() => return Ok(false),
                _ => fsutil::remove_file(&dest)?,
            }
        }
        Ok(false)
    }

    /// Drops the network's claim of `net` (only if it is this network's).
    pub(crate) fn release(
        &self,
        net: &Ipv4Net,
        state_dir: &Path,
        network_id: &str,
    ) -> Result<(), NetError> {
        let path = self.path(net);
        match self.read(&path)? {
            Some(c) if c.state_dir == state_dir && c.network_id == network_id => {
                fsutil::remove_file(&path)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_conflict_stale_release() {
        let host = tempfile::tempdir().expect("tempdir");
        let store_a = tempfile::tempdir().expect("tempdir");
        let store_b = tempfile::tempdir().expect("tempdir");
        let claims = Claims::open(host.path()).expect("open");
        let net: Ipv4Net = "10.77.1.0/24".parse().expect("net");
        let live = |dir: &Path, id: &str| {
            let file = crate::net::store::network_file(dir, id);
            fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            fs::write(file, b"{}").expect("write");
        };
        live(store_a.path(), "a1");
        assert!(claims.claim(&net, store_a.path(), "a1").expect("claim"));
        // Claiming again is idempotent; another live store is refused.
        assert!(claims.claim(&net, store_a.path(), "a1").expect("claim"));
        live(store_b.path(), "b1");
        assert!(!claims.claim(&net, store_b.path(), "b1").expect("claim"));
        let seen = claims.others(store_b.path()).expect("others");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].net, net);
        assert!(claims.others(store_a.path()).expect("others").is_empty());
        // Release by someone else does nothing; by the owner it frees it.
        claims.release(&net, store_b.path(), "b1").expect("release");
        assert!(!claims.claim(&net, store_b.path(), "b1").expect("claim"));
        claims.release(&net, store_a.path(), "a1").expect("release");
        assert!(claims.claim(&net, store_b.path(), "b1").expect("claim"));
        // The owner's network file gone: the claim is stale and taken over.
        fs::remove_file(crate::net::store::network_file(store_b.path(), "b1")).expect("rm");
        assert!(claims.others(store_a.path()).expect("others").is_empty());
        assert!(claims.claim(&net, store_a.path(), "a1").expect("claim"));
    }
}
