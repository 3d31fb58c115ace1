//! Pins (`ROOT/pins/<holder>`: one diff_id a line): snapshots that something outside any
//! image store relies on, such as the engine's containers, which every gc keeps whatever
//! keep set its caller computed (`skiff-build image rm` knows only the store's images).

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::digest::Digest;

use super::temp::TEMP_PREFIX;
use super::SnapshotError;

const MAX_HOLDER: usize = 128;

/// A holder name is a file name: `[A-Za-z0-9_.-]`, not starting with `.`.
pub(super) fn check_holder(holder: &str) -> Result<(), SnapshotError> {
    let bad = |reason| {
        Err(SnapshotError::Holder {
            holder: holder.to_owned(),
            reason,
        })
    };
    if holder.is_empty() || holder.len() > MAX_HOLDER {
        return bad("must be 1 to 128 characters");
    }
    if holder.starts_with('.') {
        return bad("cannot start with '.'");
    }
    if !holder
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return bad("only letters, digits and _.- are allowed");
    }
    Ok(())
}

/// Writes `dir/holder` atomically (temp file, fsync, rename).
pub(super) fn write(dir: &Path, holder: &str, diff_ids: &[Digest]) -> Result<(), SnapshotError> {
    check_holder(holder)?;
    fs::create_dir_all(dir).map_err(SnapshotError::io(dir))?;
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(SnapshotError::io(dir))?;
    let mut text = String::new();
    for d in diff_ids {
        text.push_str(&d.to_string());
        text.push('\n');
    }
    let dest = dir.join(holder);
    temp.write_all(text.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(SnapshotError::io(temp.path().to_owned()))?;
    temp.persist(&dest)
        .map_err(|e| SnapshotError::io(&dest)(e.error))?;
    super::sync_dir(dir)
}

/// Removes `dir/holder`; true when it was there.
pub(super) fn remove(dir: &Path, holder: &str) -> Result<bool, SnapshotError> {
    check_holder(holder)?;
    let path = dir.join(holder);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SnapshotError::io(path)(e)),
    }
}

/// Every pin: holder and diff_ids, sorted by holder.
pub(super) fn read_all(dir: &Path) -> Result<Vec<(String, Vec<Digest>)>, SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SnapshotError::io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(SnapshotError::io(dir))?;
        let Some(holder) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if check_holder(&holder).is_err() {
            continue;
        }
        let path = entry.path();
        let text = fs::read_to_string(&path).map_err(SnapshotError::io(&path))?;
        let mut diff_ids = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            // An unreadable pin must not let gc remove what it protects: refuse.
            let d = Digest::parse(line).map_err(|e| SnapshotError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            diff_ids.push(d);
        }
        out.push((holder, diff_ids));
    }
    out.sort();
    Ok(out)
}

/// The union of every pin's diff_ids.
pub(super) fn pinned(dir: &Path) -> Result<HashSet<Digest>, SnapshotError> {
    Ok(read_all(dir)?.into_iter().flat_map(|(_, d)| d).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders() {
        for ok in ["c1", "container-0123abc", "unpack.42_x"] {
            assert!(check_holder(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "a/b", "..", "a b", &"x".repeat(129)] {
            assert!(check_holder(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_read_remove() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let d = Digest::sha256_of(b"layer");
        write(tmp.path(), "c1", std::slice::from_ref(&d))?;
        write(tmp.path(), "c2", &[])?;
        assert_eq!(
            read_all(tmp.path())?,
            vec![
                ("c1".to_owned(), vec![d.clone()]),
                ("c2".to_owned(), vec![])
            ]
        );
        assert!(pinned(tmp.path())?.contains(&d));
        assert!(remove(tmp.path(), "c1")?);
        assert!(!remove(tmp.path(), "c1")?);
        assert!(pinned(tmp.path())?.is_empty());
        Ok(())
    }
}
