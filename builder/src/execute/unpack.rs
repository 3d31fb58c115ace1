//! Extracting an image layer into a directory that overlayfs can use as a lower layer: OCI
//! whiteouts become overlay whiteouts (a 0/0 character device) and opaque markers the
//! `trusted.overlay.opaque` xattr.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use skiff_specs::media_type::Compression;

use super::xattr::set_xattr;
use crate::compress::decoder;
use crate::error::{BuildError, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Unpacks the layer `reader` (compressed per `media_type`) into `dest`.
pub fn unpack_layer(reader: impl Read, media_type: &str, dest: &Path, what: &str) -> Result<()> {
    let compression = Compression::of_layer(media_type)
        .ok_or_else(|| BuildError::step(what, format!("{media_type} is not a layer media type")))?;
    fs::create_dir_all(dest).map_err(BuildError::io(dest))?;
    let bad = |e: io::Error| BuildError::step(what, format!("reading layer: {e}"));
    let input = decoder(reader, compression).map_err(bad)?;
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_ownerships(true);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = clean(&entry.path().map_err(bad)?)
            .ok_or_else(|| BuildError::step(what, "layer entry with an unsafe path"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dest.join(path.parent().unwrap_or(Path::new("")));
        if name == OPAQUE {
            fs::create_dir_all(&parent).map_err(BuildError::io(&parent))?;
            set_xattr(&parent, "trusted.overlay.opaque", b"y")?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            fs::create_dir_all(&parent).map_err(BuildError::io(&parent))?;
            let target = parent.join(hidden);
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| {
                BuildError::Io {
                    path: target.clone(),
                    source: e.into(),
                }
            })?;
            continue;
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(true);
        entry.unpack_in(dest).map_err(bad)?;
    }
    Ok(())
}

/// The entry path without `.`/leading `/`; None when it has `..`.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    Some(out)
}
