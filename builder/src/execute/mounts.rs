//! `RUN --mount`: bind (read-only, from the context, a stage or an image), cache (a directory
//! kept across builds beside the store, `sharing=locked` serialised by flock) and tmpfs, as
//! runtime-spec mounts. Mount points the runtime had to create are removed after the step
//! so they do not end up in the layer.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};
use skiff_specs::Digest;

use super::resolve::{absolute, resolve_in};
use super::{base, Executor, Snapshot};
use crate::error::{BuildError, Result};
use crate::frontend::{resolve_copy_from, Mount, MountType, Sharing, StageRef};

/// A RUN's mounts, held ready while it runs.
#[derive(Debug, Default)]
pub struct RunMounts {
    pub specs: Vec<Value>,
    /// Absolute targets, to clean up stubs afterwards.
    pub targets: Vec<String>,
    /// Source stages' rootfs mounted for binds; unmounted on drop.
    _snapshots: Vec<Snapshot>,
    /// Locks of `sharing=locked` caches.
    _locks: Vec<Flock<File>>,
}

impl Executor<'_> {
    /// Prepares `mounts` for a RUN in a stage whose working directory is `workdir`.
    pub(super) fn run_mounts(
        &mut self,
        mounts: &[Mount],
        workdir: &str,
        step: &str,
    ) -> Result<RunMounts> {
        let mut out = RunMounts::default();
        for m in mounts {
            let target = m
                .target
                .as_deref()
                .ok_or_else(|| BuildError::step(step, "--mount needs target="))?;
            let target = absolute(workdir, target);
            let spec = match m.kind {
                MountType::Tmpfs => {
                    let mut options = vec!["nosuid".to_owned(), "nodev".to_owned()];
                    if let Some(size) = m.size {
                        options.push(format!("size={size}"));
                    }
                    json!({"destination": target, "type": "tmpfs", "source": "tmpfs",
                           "options": options})
                }
                MountType::Bind => {
                    if !m.readonly {
                        return Err(BuildError::step(
                            step,
                            "read-write bind mounts are not supported yet",
                        ));
                    }
                    let source = self.bind_source(m, &mut out, step)?;
                    json!({"destination": target, "type": "bind", "source": source,
                           "options": ["rbind", "ro"]})
                }
                MountType::Cache => {
                    if m.from.is_some() {
                        return Err(BuildError::step(
                            step,
                            "cache mounts seeded from= a stage are not supported yet",
                        ));
                    }
                    let dir = self.cache_dir(m, &mut out, step)?;
                    let ro = if m.readonly { "ro" } else { "rw" };
                    json!({"destination": target, "type": "bind", "source": dir,
                           "options": ["rbind", ro]})
                }
                MountType::Secret | MountType::Ssh => {
                    return Err(BuildError::step(
                        step,
                        format!("--mount=type={} is not supported yet", m.kind.as_str()),
                    ))
                }
            };
            out.specs.push(spec);
            out.targets.push(target);
        }
        Ok(out)
    }

    /// The host path a bind mount's source names.
    fn bind_source(&mut self, m: &Mount, out: &mut RunMounts, step: &str) -> Result<PathBuf> {
        let source = m.source.as_deref().unwrap_or("/");
        let root = match &m.from {
            None => self.opts.context.clone(),
            Some(from) => {
                let lowers = match resolve_copy_from(self.df, from)
                    .map_err(|e| BuildError::step(step, e))?
                {
                    StageRef::Stage(i) => self
                        .results
                        .get(&i)
                        .ok_or_else(|| {
                            BuildError::step(step, format!("stage {from} is not built yet"))
                        })?
                        .layers
                        .clone(),
                    StageRef::Image(name) => {
                        let image = base::load_base(self.store, &self.opts.contexts, &name)?;
                        self.extract_all(&image)?
                    }
                };
                let dirs: Vec<PathBuf> = lowers.iter().map(|l| l.dir.clone()).collect();
                let dir = self.new_dir("mount");
                let snap = Snapshot::mount(&dir, &dirs)?;
                let merged = snap.merged.clone();
                out._snapshots.push(snap);
                merged
            }
        };
        let host = resolve_in(&root, source, true)
            .map_err(|e| BuildError::step(step, format!("mount source {source}: {e}")))?;
        if host.symlink_metadata().is_err() {
            return Err(BuildError::step(
                step,
                format!("mount source {source}: not found"),
            ));
        }
        Ok(host)
    }

    /// The directory of a cache mount (created with its uid, gid and mode on first use).
    fn cache_dir(&mut self, m: &Mount, out: &mut RunMounts, step: &str) -> Result<PathBuf> {
        let id = m.cache_id().unwrap_or_default();
        let base = self
            .opts
            .store
            .parent()
            .map_or_else(|| self.opts.store.clone(), Path::to_path_buf)
            .join("build-cache-mounts");
        let name = Digest::sha256_of(id.as_bytes());
        let dir = base.join(name.hex());
        if !dir.is_dir() {
            fs::create_dir_all(&base).map_err(BuildError::io(&base))?;
            // Created under a temp name and renamed, so a half-made cache is never seen.
            let temp = base.join(format!(".new-{}-{}", name.hex(), std::process::id()));
            let _ = fs::remove_dir_all(&temp);
            fs::create_dir(&temp).map_err(BuildError::io(&temp))?;
            fs::set_permissions(&temp, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
                .map_err(BuildError::io(&temp))?;
            nix::unistd::chown(
                &temp,
                Some(nix::unistd::Uid::from_raw(m.uid.unwrap_or(0))),
                Some(nix::unistd::Gid::from_raw(m.gid.unwrap_or(0))),
            )
            .map_err(|e| BuildError::io(&temp)(e.into()))?;
            if fs::rename(&temp, &dir).is_err() {
                // Another build made it first.
                let _ = fs::remove_dir_all(&temp);
            }
        }
        if m.effective_sharing() == Sharing::Locked {
            let lock_path = base.join(format!("{}.lock", name.hex()));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(BuildError::io(&lock_path))?;
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| BuildError::step(step, format!("locking cache {id}: {e}")))?;
            out._locks.push(lock);
        }
        Ok(dir)
    }
}

/// The first ancestor-or-self of `target` missing in `rootfs` (what the runtime will create
/// for the mount point).
pub fn missing_stub(rootfs: &Path, target: &str) -> Option<String> {
    let mut so_far = String::new();
    for part in target.split('/').filter(|p| !p.is_empty()) {
        so_far.push('/');
        so_far.push_str(part);
        let host = resolve_in(rootfs, &so_far, false).ok()?;
        if host.symlink_metadata().is_err() {
            return Some(so_far);
        }
    }
    None
}

/// Removes a mount stub the runtime created: `target` and its parents up to `stub`, each
/// only if empty (the command may have written beside the mount).
pub fn remove_stub(rootfs: &Path, stub: &str, target: &str) {
    let mut path = target.to_owned();
    loop {
        let Ok(host) = resolve_in(rootfs, &path, false) else {
            return;
        };
        let removed = match fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => fs::remove_dir(&host).is_ok(),
            Ok(m) if m.is_file() && m.len() == 0 => fs::remove_file(&host).is_ok(),
            _ => false,
        };
        if !removed || path == stub {
            return;
        }
        match path.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => path = parent.to_owned(),
            _ => return,
        }
    }
}
