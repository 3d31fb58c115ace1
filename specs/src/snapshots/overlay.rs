//! Overlay mounts of snapshot dirs, also when the options pass a page. Lowerdirs are
//! first made relative to the directory they share and the mount made from there; when
//! even that is too long (64-hex snapshot names: about 60 layers fit), from
//! `/proc/self/fd` with each lowerdir an open descriptor's number. Either way the mount
//! runs on a thread of its own that stopped sharing its working directory
//! (unshare(CLONE_FS)), so the process's cwd never moves.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;

use super::shorten::{escape, Options, PAGE};
use super::SnapshotError;

/// Present when the kernel's overlayfs knows the `index` option.
const INDEX_PARAMETER: &str = "/sys/module/overlay/parameters/index";

/// The overlay mount options for `lowers` (top first) and, for a writable overlay,
/// `upper` and `work`: `lowerdir=A:B[,upperdir=U,workdir=W][,index=off]`, paths escaped
/// as overlayfs reads them. `index=off` (when the kernel knows it) lets an upper dir be
/// mounted again over lower dirs that were unpacked anew. Paths that are not UTF-8 come
/// out lossily: use [`mount_overlay`] for those.
pub fn overlay_options(lowers: &[PathBuf], upper: Option<&Path>, work: Option<&Path>) -> String {
    String::from_utf8_lossy(&options(lowers, upper, work)).into_owned()
}

fn options(lowers: &[PathBuf], upper: Option<&Path>, work: Option<&Path>) -> Vec<u8> {
    let mut out = b"lowerdir=".to_vec();
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        out.extend(escape(l.as_os_str().as_bytes()));
    }
    for (key, dir) in [(&b",upperdir="[..], upper), (b",workdir=", work)] {
        if let Some(dir) = dir {
            out.extend_from_slice(key);
            out.extend(escape(dir.as_os_str().as_bytes()));
        }
    }
    if upper.is_some() && Path::new(INDEX_PARAMETER).exists() {
        out.extend_from_slice(b",index=off");
    }
    out
}

/// Mounts an overlay of `lowers` (top first) with `upper` and `work` at `target`; with
/// both None, a read-only overlay.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
    target: &Path,
) -> Result<(), SnapshotError> {
    let bad = |reason: &str| SnapshotError::Overlay {
        target: target.to_owned(),
        reason: reason.to_owned(),
    };
    if lowers.is_empty() {
        return Err(bad("no lower dirs"));
    }
    let flags = match (upper, work) {
        (Some(_), Some(_)) => MsFlags::empty(),
        (None, None) => MsFlags::MS_RDONLY,
        _ => return Err(bad("an upper dir needs a work dir and the other way round")),
    };
    let data = options(lowers, upper, work);
    mount_overlay_data(target, flags, OsStr::from_bytes(&data))
}

/// Mounts an overlay with the mount options `data` (as containerd passes them) and
/// `flags` at `target`, shortening `lowerdir=` when `data` passes a page.
pub fn mount_overlay_data(
    target: &Path,
    flags: MsFlags,
    data: &OsStr,
) -> Result<(), SnapshotError> {
    let data = data.as_bytes();
    if data.len() < PAGE {
        return mount_now(target, flags, data);
    }
    let Some(options) = Options::parse(data) else {
        return Err(SnapshotError::Overlay {
            target: target.to_owned(),
            reason: format!(
                "options are {} bytes, over a page, and have no lowerdir",
                data.len()
            ),
        });
    };
    // The mount runs elsewhere: the target must not depend on the cwd.
    let target = std::path::absolute(target).map_err(SnapshotError::io(target))?;
    if let Some((dir, short)) = options
        .relative_to_common_dir()
        .filter(|(_, short)| short.len() < PAGE)
    {
        return on_own_cwd(&target, || {
            std::env::set_current_dir(&dir).map_err(SnapshotError::io(&dir))?;
            mount_now(&target, flags, &short)
        });
    }
    on_own_cwd(&target, || {
        // Opened before the cwd moves: relative lowerdirs mean the caller's cwd.
        let mut fds = Vec::with_capacity(options.lowers.len());
        for l in &options.lowers {
            let fd = open(
                l.as_path(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| SnapshotError::io(l)(e.into()))?;
            // SAFETY: `fd` was just returned open by the kernel and nothing else owns it.
            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let names: Vec<PathBuf> = fds
            .iter()
            .map(|fd| PathBuf::from(fd.as_raw_fd().to_string()))
            .collect();
        let short = options.with_lowers(&names);
        if short.len() >= PAGE {
            return Err(SnapshotError::Overlay {
                target: target.clone(),
                reason: format!(
                    "options are {} bytes even with {} lowerdirs as descriptors, over a page",
                    short.len(),
                    names.len()
                ),
            });
        }
        let fd_dir = Path::new("/proc/self/fd");
        std::env::set_current_dir(fd_dir).map_err(SnapshotError::io(fd_dir))?;
        mount_now(&target, flags, &short)
    })
}

fn mount_now(target: &Path, flags: MsFlags, data: &[u8]) -> Result<(), SnapshotError> {
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        flags,
        Some(OsStr::from_bytes(data)),
    )
    .map_err(|e| SnapshotError::Mount {
        target: target.to_owned(),
        options: String::from_utf8_lossy(data).into_owned(),
        source: e.into(),
    })
}

/// Runs `f` on a new thread that stopped sharing the process's filesystem context, so it
/// may change its working directory.
fn on_own_cwd<T: Send>(
    target: &Path,
    f: impl FnOnce() -> Result<T, SnapshotError> + Send,
) -> Result<T, SnapshotError> {
    let failed = |reason: String| SnapshotError::Overlay {
        target: target.to_owned(),
        reason,
    };
    thread::scope(|s| {
        thread::Builder::new()
            .name("overlay-mount".into())
            .spawn_scoped(s, || {
                unshare(CloneFlags::CLONE_FS)
                    .map_err(|e| failed(format!("cannot unshare the thread's cwd: {e}")))?;
                f()
            })
            .map_err(|e| failed(format!("cannot start the mount thread: {e}")))?
            .join()
            .map_err(|_| failed("the mount thread panicked".to_owned()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_paths_and_keep_the_order() {
        let lowers = [PathBuf::from("/s/top"), PathBuf::from("/s/a:b,c")];
        let ro = overlay_options(&lowers, None, None);
        assert_eq!(ro, r"lowerdir=/s/top:/s/a\:b\,c");
        let rw = overlay_options(&lowers, Some(Path::new("/u")), Some(Path::new("/w")));
        let index = if Path::new(INDEX_PARAMETER).exists() {
            ",index=off"
        } else {
            ""
        };
        assert_eq!(
            rw,
            format!(r"lowerdir=/s/top:/s/a\:b\,c,upperdir=/u,workdir=/w{index}")
        );
    }

    #[test]
    fn half_writable_overlays_are_refused() {
        let err = mount_overlay(
            &[PathBuf::from("/nonexistent")],
            Some(Path::new("/u")),
            None,
            Path::new("/nonexistent-target"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("needs a work dir"), "{err}");
    }
}
