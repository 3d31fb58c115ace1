//! Files of the network store: JSON written atomically (a fsynced temp file
//! renamed over the old one, so readers see the old or the new content,
//! never a half), and flock locks between processes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::NetError;

/// Prefix of temp files, which readers skip.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// An exclusive flock held until dropped.
pub(crate) struct Lock {
    _flock: Flock<File>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lock")
    }
}

/// Takes the exclusive flock of `path` (made if missing), waiting for it.
/// Each call opens the file anew, so two `Networks` in one process exclude
/// each other as two processes do.
pub(crate) fn lock(path: &Path) -> Result<Lock, NetError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(NetError::io("opening the lock file", path))?;
    let flock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| NetError::Io {
        what: "locking",
        path: path.to_owned(),
        source: io::Error::from(errno),
    })?;
    Ok(Lock { _flock: flock })
}

/// Writes `value` as JSON to `dest` through a temp file in its directory.
pub(crate) fn write_json<T: Serialize>(dest: &Path, value: &T) -> Result<(), NetError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| NetError::Json {
        path: dest.to_owned(),
        source,
    })?;
    write_atomic(dest, &bytes)
}

pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), NetError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(NetError::io("creating a temp file in", dir))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(NetError::io("writing", temp.path()))?;
    temp.persist(dest)
        .map_err(|e| NetError::io("renaming a temp file to", dest)(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(NetError::io("syncing", dir))
}

/// Reads JSON from `path`; `None` when the file does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, NetError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NetError::io("reading", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| NetError::Json {
            path: path.to_owned(),
            source,
        })
}

/// Removes `path`; a missing file is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), NetError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io("removing", path)(e)),
    }
}

pub(crate) fn create_dir(path: &Path) -> Result<(), NetError> {
    fs::create_dir_all(path).map_err(NetError::io("creating the directory", path))
}

/// 32 random bytes in hex: network ids.
pub(crate) fn random_hex() -> Result<String, NetError> {
    let mut bytes = [0u8; 32];
    let path = Path::new("/dev/urandom");
    let mut file = File::open(path).map_err(NetError::io("opening", path))?;
    io::Read::read_exact(&mut file, &mut bytes).map_err(NetError::io("reading", path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_roundtrip_and_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json");
        assert_eq!(read_json::<Vec<u32>>(&path).expect("read"), None);
        write_json(&path, &vec![1u32, 2]).expect("write");
        write_json(&path, &vec![3u32]).expect("overwrite");
        assert_eq!(read_json::<Vec<u32>>(&path).expect("read"), Some(vec![3]));
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
        fs::write(&path, b"{").expect("write");
        let err = read_json::<Vec<u32>>(&path).expect_err("bad json");
        assert!(err.to_string().contains("x.json"), "{err}");
        remove_file(&path).expect("remove");
        remove_file(&path).expect("remove again");
    }

    #[test]
    fn ids_are_random_hex() {
        let a = random_hex().expect("id");
        let b = random_hex().expect("id");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
