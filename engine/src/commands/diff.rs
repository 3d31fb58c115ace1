//! `diff`: what the container changed in its filesystem: A (added),
//! C (changed), D (deleted), read from its overlay upper dir.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub container: String,
}

/// Whether `rel` exists in the image's layers (top first), stopping at a
/// whiteout or an opaque directory.
fn in_image(lowers: &[PathBuf], rel: &Path) -> bool {
    for l in lowers {
        let p = l.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(md) => {
                let whiteout = md.file_type().is_char_device() && md.rdev() == 0;
                return !whiteout;
            }
            Err(_) => continue,
        }
    }
    false
}

fn walk(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<String>) -> Result<()> {
    let dir = upper.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let md = std::fs::symlink_metadata(e.path())?;
        let shown = Path::new("/").join(&rel);
        if md.file_type().is_char_device() && md.rdev() == 0 {
            out.push(format!("D {}", shown.display()));
            continue;
        }
        let kind = if in_image(lowers, &rel) { 'C' } else { 'A' };
        out.push(format!("{kind} {}", shown.display()));
        if md.is_dir() {
            walk(upper, &rel, lowers, out)?;
        }
    }
    Ok(())
}

pub fn run(engine: &Engine, a: DiffArgs) -> Result<i32> {
    let c = engine.containers.find(&a.container)?;
    let dir = engine.containers.dir(&c.id);
    let store = engine.store()?;
    let lowers = crate::snapshots::open(engine)?.prepare(&store, &c.manifest)?;
    let mut out = Vec::new();
    walk(&dir.upper(), Path::new(""), &lowers, &mut out)?;
    for l in out {
        println!("{l}");
    }
    Ok(0)
}
