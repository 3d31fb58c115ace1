//! Work on mounts that nobody else sees and that cannot outlive us: a thread enters a
//! mount namespace of its own (unshare(CLONE_NEWNS), with / and below made slaves so
//! nothing propagates back to the host) and runs the work there, threads it starts
//! included. When the thread ends the namespace goes, and its mounts with it: also on
//! a panic or when the process is killed, so no path leaves a mount behind.

use std::io;
use std::path::PathBuf;
use std::thread;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{BuildError, Result};

/// Runs `work` in a private mount namespace (see the module doc).
pub fn in_private_mount_ns<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let failed = |what: &str, e: &dyn std::fmt::Display| BuildError::Io {
        path: PathBuf::from("/proc/thread-self/ns/mnt"),
        source: io::Error::other(format!("{what}: {e}")),
    };
    thread::scope(|s| {
        thread::Builder::new()
            .name("private-mounts".into())
            .spawn_scoped(s, || {
                unshare(CloneFlags::CLONE_NEWNS)
                    .map_err(|e| failed("cannot make a mount namespace", &e))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_SLAVE,
                    None::<&str>,
                )
                .map_err(|e| failed("cannot make / a slave mount", &e))?;
                work()
            })
            .map_err(|e| failed("cannot start a thread", &e))?
            .join()
            .map_err(|_| failed("the thread", &"panicked"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_stay_in_the_thread_and_go_with_it() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(BuildError::io("tempdir"))?;
        let target = tmp.path().join("t");
        std::fs::create_dir(&target).map_err(BuildError::io(&target))?;
        let seen_inside = in_private_mount_ns(|| {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| BuildError::io(&target)(e.into()))?;
            std::fs::write(target.join("f"), "x").map_err(BuildError::io(&target))?;
            // Threads started here see the mount too.
            let t = target.clone();
            Ok(thread::spawn(move || t.join("f").exists())
                .join()
                .unwrap_or(false))
        })?;
        assert!(seen_inside);
        assert!(!target.join("f").exists(), "the mount leaked out");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        assert!(!mounts.contains(&target.display().to_string()));
        Ok(())
    }
}
