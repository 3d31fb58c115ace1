//! What a snapshot records about itself (`snapshot.json`, written before it is published)
//! and the disk space a tree takes.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// `ROOT/<algorithm>/<hex>/snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Info {
    pub diff_id: Digest,
    /// The blob it was unpacked from (any blob with this diff_id gives the same files).
    pub blob: Digest,
    pub media_type: String,
    /// Disk space of `fs/` when it was made.
    pub bytes: u64,
    /// Seconds since the epoch.
    pub created: u64,
}

impl Info {
    pub fn read(path: &Path) -> Option<Info> {
        serde_json::from_slice(&fs::read(path).ok()?).ok()
    }
}

/// Bytes `path` takes on disk: the blocks of every inode below it (itself included),
/// hardlinked ones once, not following symlinks.
pub(super) fn disk_usage(path: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack: Vec<PathBuf> = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = fs::symlink_metadata(&p)?;
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total = total.saturating_add(meta.blocks().saturating_mul(512));
        if meta.is_dir() {
            for entry in fs::read_dir(&p)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardlinks_count_once() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        fs::write(tmp.path().join("a"), vec![1u8; 64 << 10])?;
        let one = disk_usage(tmp.path())?;
        fs::hard_link(tmp.path().join("a"), tmp.path().join("b"))?;
        assert_eq!(disk_usage(tmp.path())?, one);
        fs::write(tmp.path().join("c"), vec![1u8; 64 << 10])?;
        assert!(disk_usage(tmp.path())? >= one + (64 << 10));
        Ok(())
    }
}
