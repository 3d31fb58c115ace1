//! Named volumes: directories under the engine's root, made on first use,
//! filled from the image's content at the mount point the first time they
//! are mounted (docker's copy-up), and kept until `volume rm` or `rm -v`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use skiff_specs::monitor::write_atomic;

use crate::ids::valid_name;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    /// Filled from an image already (copy-up happens once).
    #[serde(default, skip_serializing)]
    pub populated: bool,
    /// Made for one container's anonymous `-v /path` (removed with it by `rm -v`).
    #[serde(default, skip_serializing)]
    pub anonymous: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    populated: bool,
    #[serde(default)]
    anonymous: bool,
}

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("meta.json")
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn to_volume(&self, name: &str, meta: Meta) -> Volume {
        Volume {
            name: name.to_owned(),
            driver: "local".to_owned(),
            mountpoint: self.data(name),
            created_at: meta.created_at,
            labels: meta.labels,
            scope: "local".to_owned(),
            populated: meta.populated,
            anonymous: meta.anonymous,
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        let bytes = fs::read(self.meta_path(name))
            .map_err(|_| anyhow::anyhow!("no such volume: {name}"))?;
        let meta: Meta = serde_json::from_slice(&bytes)
            .with_context(|| format!("volume {name}: invalid metadata"))?;
        Ok(self.to_volume(name, meta))
    }

    /// Creates `name` (an existing one is returned as it is, as docker does).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        if !valid_name(name) {
            bail!("invalid volume name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+");
        }
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        let data = self.data(name);
        fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
        let meta = Meta {
            created_at: skiff_specs::jsonlog::format_time(chrono::Utc::now()),
            labels,
            populated: false,
            anonymous,
        };
        write_atomic(&self.meta_path(name), &serde_json::to_vec(&meta)?)?;
        self.get(name)
    }

    /// Marks a volume as filled from an image.
    pub fn set_populated(&self, name: &str) -> Result<()> {
        let path = self.meta_path(name);
        let bytes = fs::read(&path)?;
        let mut meta: Meta = serde_json::from_slice(&bytes)?;
        meta.populated = true;
        write_atomic(&path, &serde_json::to_vec(&meta)?)?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out: Vec<Volume> = entries
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume (the caller checks it is not in use).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.get(name)?;
        let dir = self.dir.join(name);
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
    }
}

/// docker's copy-up: when a new volume is first mounted over a directory
/// the image has, the image's files there are copied into it (owners,
/// modes, links kept; nothing is followed out of either tree). `target` is
/// resolved inside `rootfs`.
pub fn copy_up(rootfs: &Path, target: &str, volume: &Path) -> Result<()> {
    let Some(image_dir) = crate::rootfs::dir_in_root(rootfs, target)? else {
        return Ok(());
    };
    let image_dir = image_dir.as_path();
    let md = fs::symlink_metadata(image_dir)?;
    copy_tree(image_dir, volume)?;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _ = nix::unistd::chown(
        volume,
        Some(nix::unistd::Uid::from_raw(md.uid())),
        Some(nix::unistd::Gid::from_raw(md.gid())),
    );
    fs::set_permissions(volume, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let md = fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src)?;
            std::os::unix::fs::symlink(target, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        } else {
            // Device nodes, fifos, sockets: not copied into volumes.
            continue;
        }
        let _ = nix::unistd::fchownat(
            None,
            &dst,
            Some(nix::unistd::Uid::from_raw(md.uid())),
            Some(nix::unistd::Gid::from_raw(md.gid())),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}
