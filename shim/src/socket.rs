//! The shim's ttrpc socket: its path, derived as containerd's own shims do
//! (a hash of containerd's address, namespace and id under /run/containerd/s),
//! so at most one shim serves a container (or a pod's group of containers).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Where containerd (1.6 to 2.x) and its shims keep shim sockets.
pub const SOCKET_DIR: &str = "/run/containerd/s";

/// `unix:///run/containerd/s/<sha256(address/namespace/id)>`, as a path.
pub fn socket_path(address: &str, namespace: &str, id: &str) -> PathBuf {
    let joined = Path::new(address).join(namespace).join(id);
    let digest = Sha256::digest(joined.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(SOCKET_DIR).join(hex)
}

pub fn address_of(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// The path in a `unix://` address (or the address itself).
pub fn path_of(address: &str) -> &Path {
    Path::new(address.strip_prefix("unix://").unwrap_or(address))
}

/// Binds `path`. Ok(None) when a live shim already listens there.
pub fn bind(path: &Path) -> Result<Option<UnixListener>> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match UnixListener::bind(path) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            // A dead shim's socket.
            fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
            UnixListener::bind(path)
                .map(Some)
                .with_context(|| format!("cannot listen on {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_containerds_hash() {
        let p = socket_path("/run/containerd/containerd.sock", "default", "c1");
        let want = Sha256::digest(b"/run/containerd/containerd.sock/default/c1");
        let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(p, Path::new(SOCKET_DIR).join(hex));
        assert_eq!(path_of(&address_of(&p)), p.as_path());
    }
}
