//! An image in the store as an OCI runtime bundle (`rootfs/` and `config.json`), ready for
//! `skiff run --bundle DIR` or any runc-compatible runtime, like `umoci unpack`. The
//! config takes the process from the image (entrypoint, cmd, env, user resolved in the
//! image's own /etc files, workdir) and the default security profile.
//!
//! The layers come from the snapshot area (unpacked there once, shared with the engine's
//! containers and later unpacks); the rootfs is a copy of their read-only overlay, so the
//! bundle stands on its own and outlives the snapshots. The overlay is mounted in a
//! private mount namespace of a thread, so it can never be left behind.

use std::fs;
use std::path::{Path, PathBuf};

use skiff_specs::runtime_spec::{container_spec, SpecOptions};
use skiff_specs::snapshots::{mount_overlay, Snapshots};
use skiff_specs::{runtime_config, Image, Overrides, Store};

use crate::error::{BuildError, Result};
use crate::execute::CopyJob;
use crate::private_mount::in_private_mount_ns;
use crate::workdir;

/// What `unpack_bundle` makes.
#[derive(Debug, Clone)]
pub struct BundleRequest<'a> {
    pub store: &'a Path,
    /// The snapshot area the layers are unpacked into (or found in).
    pub snapshots: &'a Path,
    /// A name (`name` means `name:latest`) or a manifest digest.
    pub reference: &'a str,
    /// The bundle directory; must not exist or be empty.
    pub dir: &'a Path,
    pub overrides: Overrides,
    pub spec: SpecOptions<'a>,
    /// Used only to clean up after builders that were killed (see workdir).
    pub runtime: &'a Path,
}

/// Makes the bundle; on failure removes what it made.
pub fn unpack_bundle(req: &BundleRequest) -> Result<PathBuf> {
    let made = prepare_dir(req.dir)?;
    let result = fill(req);
    if result.is_err() {
        let rootfs = req.dir.join("rootfs");
        let _ = fs::remove_dir_all(&rootfs);
        let _ = fs::remove_file(req.dir.join("config.json"));
        if made {
            let _ = fs::remove_dir(req.dir);
        }
    }
    result.map(|()| req.dir.join("config.json"))
}

/// Creates `dir` or checks that it is empty; true when we created it.
fn prepare_dir(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BuildError::Option {
                    option: "BUNDLE",
                    reason: format!("{} is not empty", dir.display()),
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(BuildError::io(dir))?;
            Ok(true)
        }
        Err(e) => Err(BuildError::io(dir)(e)),
    }
}

fn fill(req: &BundleRequest) -> Result<()> {
    let store = Store::open(req.store)?;
    let image = Image::load_host(&store, req.reference)?;
    let snapshots = Snapshots::open(req.snapshots)?;
    // Held until the copy is done: no gc takes the layers away meanwhile.
    let _lease = snapshots.lease()?;
    let lowers = snapshots.prepare(&store, &image.descriptor)?;
    let work = workdir::create(req.runtime)?;
    let merged = work.path().join("merged");
    fs::create_dir(&merged).map_err(BuildError::io(&merged))?;
    let rootfs = req.dir.join("rootfs");
    fs::create_dir_all(&rootfs).map_err(BuildError::io(&rootfs))?;
    in_private_mount_ns(|| {
        mount_overlay(&lowers, None, None, &merged)?;
        CopyJob::whole_tree(&merged, &rootfs).run("image unpack")
    })?;
    let runtime =
        runtime_config(&image.config, &rootfs, &req.overrides).map_err(|e| BuildError::Option {
            option: "image config",
            reason: format!("{}: {e}", req.reference),
        })?;
    let spec = container_spec(&runtime.process, Path::new("rootfs"), &req.spec);
    let config = req.dir.join("config.json");
    let text = serde_json::to_string_pretty(&spec).map_err(|e| BuildError::Option {
        option: "config.json",
        reason: e.to_string(),
    })?;
    fs::write(&config, text).map_err(BuildError::io(&config))?;
    Ok(())
}
