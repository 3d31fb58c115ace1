//! `RUN --mount`: bind (read-only, from the context, a stage or an image), cache (a directory
//! kept across builds beside the store, `sharing=locked` serialised by flock), tmpfs and
//! secret (a private copy of the --secret file with the mount's mode and owner), as
//! runtime-spec mounts. Mount points the runtime had to create are removed after the step
//! so they do not end up in the layer.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
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
    /// `KEY=value` entries secrets with `env=` add to the command's environment.
    pub env: Vec<String>,
    /// Source stages' rootfs mounted for binds; unmounted on drop.
    _snapshots: Vec<Snapshot>,
    /// Locks of `sharing=locked` caches.
    _locks: Vec<Flock<File>>,
    /// Private copies of secrets, removed when the step is over.
    secret_dirs: Vec<PathBuf>,
}

impl Drop for RunMounts {
    fn drop(&mut self) {
        for dir in &self.secret_dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Executor<'_> {
    /// Prepares `mounts` for a RUN in a stage whose working directory is `workdir`.
    pub(super) fn run_mounts(
        &self,
        mounts: &[Mount],
        workdir: &str,
        step: &str,
    ) -> Result<RunMounts> {
        let mut out = RunMounts::default();
        for m in mounts {
            let target = match m.kind {
                MountType::Secret => m.secret_target(),
                _ => m.target.clone(),
            }
            .ok_or_else(|| BuildError::step(step, "--mount needs target="))?;
            let target = absolute(workdir, &target);
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
                MountType::Secret => {
                    let Some(file) = self.secret_file(m, step)? else {
                        continue;
                    };
                    if let Some(dir) = file.parent() {
                        out.secret_dirs.push(dir.to_path_buf());
                    }
                    if let Some(var) = &m.env {
                        let value = fs::read_to_string(&file).map_err(BuildError::io(&file))?;
                        out.env.push(format!("{var}={value}"));
                        if m.target.is_none() {
                            continue;
                        }
                    }
                    json!({"destination": target, "type": "bind", "source": file,
                           "options": ["rbind", "ro"]})
                }
                MountType::Ssh => {
                    return Err(BuildError::step(
                        step,
                        "--mount=type=ssh is not supported yet",
                    ))
                }
            };
            out.specs.push(spec);
            out.targets.push(target);
        }
        Ok(out)
    }

    /// The host path a bind mount's source names.
    fn bind_source(&self, m: &Mount, out: &mut RunMounts, step: &str) -> Result<PathBuf> {
        let source = m.source.as_deref().unwrap_or("/");
        let root = match &m.from {
            None => self.opts.context.clone(),
            Some(from) => {
                let lowers = match resolve_copy_from(self.df, from)
                    .map_err(|e| BuildError::step(step, e))?
                {
                    StageRef::Stage(i) => self.stage_layers(i, step)?,
                    StageRef::Image(name) => {
                        let image = base::load_base(
                            self.store,
                            &self.opts.contexts,
                            &self.opts.registry,
                            &name,
                        )?;
                        self.extract_all(&image)?
                    }
                };
                let dirs = self.lower_dirs(&lowers)?;
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

    /// A private copy of the secret a mount names, with its mode (default 0400) and owner;
    /// None when it was not given and is not required.
    fn secret_file(&self, m: &Mount, step: &str) -> Result<Option<PathBuf>> {
        let id = m.secret_id().unwrap_or_default();
        let Some(src) = self.opts.secrets.get(id) else {
            if m.required {
                return Err(BuildError::step(
                    step,
                    format!("secret {id} is required: pass --secret id={id},src=FILE"),
                ));
            }
            return Ok(None);
        };
        let dir = self.new_dir("secret");
        fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(BuildError::io(&dir))?;
        let file = dir.join("secret");
        fs::copy(src, &file).map_err(BuildError::io(src))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
            .map_err(BuildError::io(&file))?;
        nix::unistd::chown(
            &file,
            Some(nix::unistd::Uid::from_raw(m.uid.unwrap_or(0))),
            Some(nix::unistd::Gid::from_raw(m.gid.unwrap_or(0))),
        )
        .map_err(|e| BuildError::io(&file)(e.into()))?;
        Ok(Some(file))
    }

    /// The directory of a cache mount (created with its uid, gid and mode on first use).
    fn cache_dir(&self, m: &Mount, out: &mut RunMounts, step: &str) -> Result<PathBuf> {
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

/// A mount point the runtime will have to create: the first missing ancestor-or-self of the
/// target, and the times of the directory it will appear in (restored after removal, so the
/// directory is unchanged and stays out of the layer).
#[derive(Debug)]
pub struct Stub {
    pub path: String,
    pub target: String,
    parent_times: Option<(TimeSpec, TimeSpec)>,
}

/// The stub `target` needs in `rootfs`, if any.
pub fn missing_stub(rootfs: &Path, target: &str) -> Option<Stub> {
    let mut so_far = String::new();
    for part in target.split('/').filter(|p| !p.is_empty()) {
        let parent = if so_far.is_empty() {
            "/".to_owned()
        } else {
            so_far.clone()
        };
        so_far.push('/');
        so_far.push_str(part);
        let host = resolve_in(rootfs, &so_far, false).ok()?;
        if host.symlink_metadata().is_err() {
            let parent_times = resolve_in(rootfs, &parent, true)
                .ok()
                .and_then(|p| fs::symlink_metadata(p).ok())
                .map(|m| {
                    (
                        TimeSpec::new(m.atime(), m.atime_nsec()),
                        TimeSpec::new(m.mtime(), m.mtime_nsec()),
                    )
                });
            return Some(Stub {
                path: so_far,
                target: target.to_owned(),
                parent_times,
            });
        }
    }
    None
}

/// Removes a mount stub the runtime created: the target and its parents up to the stub,
/// each only if empty (the command may have written beside the mount).
pub fn remove_stub(rootfs: &Path, stub: &Stub) {
    let mut path = stub.target.clone();
    loop {
        let Ok(host) = resolve_in(rootfs, &path, false) else {
            return;
        };
        let removed = match fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => fs::remove_dir(&host).is_ok(),
            Ok(m) if m.is_file() && m.len() == 0 => fs::remove_file(&host).is_ok(),
            _ => false,
        };
        if !removed {
            return;
        }
        if path == stub.path {
            break;
        }
        match path.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => path = parent.to_owned(),
            _ => return,
        }
    }
    let parent = stub
        .path
        .rsplit_once('/')
        .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
    if let (Some((atime, mtime)), Ok(host)) = (stub.parent_times, resolve_in(rootfs, parent, true))
    {
        let _ = utimensat(None, &host, &atime, &mtime, UtimensatFlags::NoFollowSymlink);
    }
}
