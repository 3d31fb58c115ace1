//! A writable view of a stage's filesystem: overlayfs of the parent layers' directories with
//! a fresh upper directory, which afterwards holds exactly what the step changed (in
//! overlayfs form: whiteouts as 0/0 character devices, opaque directories by xattr).

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};
use skiff_specs::snapshots::mount_overlay;

use crate::error::{BuildError, Result};

/// A mounted overlay; unmounted on drop.
#[derive(Debug)]
pub struct Snapshot {
    pub merged: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
}

impl Snapshot {
    /// Mounts `lowers` (bottom first) with a new upper dir under `dir` (which must not exist).
    pub fn mount(dir: &Path, lowers: &[PathBuf]) -> Result<Snapshot> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let merged = dir.join("merged");
        let empty = dir.join("empty");
        for d in [&upper, &work, &merged, &empty] {
            fs::create_dir_all(d).map_err(BuildError::io(d))?;
        }
        // overlayfs wants at least one lower layer, top first.
        let lowers: Vec<PathBuf> = if lowers.is_empty() {
            vec![empty]
        } else {
            lowers.iter().rev().cloned().collect()
        };
        mount_overlay(&lowers, Some(&upper), Some(&work), &merged)?;
        Ok(Snapshot {
            merged,
            upper,
            mounted: true,
        })
    }

    /// Unmounts, leaving the upper dir for the diff.
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            umount2(&self.merged, MntFlags::empty()).map_err(|e| BuildError::Io {
                path: self.merged.clone(),
                source: e.into(),
            })?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.mounted {
            // Detach so a busy mount never outlives the build's temp dir cleanup.
            let _ = umount2(&self.merged, MntFlags::MNT_DETACH);
        }
    }
}
