//! The build's scratch space in memory: a private tmpfs mounted over the work dir. Steps
//! create and the end of the build deletes thousands of files there (snapshot upper dirs,
//! unpacked layers); on a disk filesystem that costs seconds (ext4 without a journal even
//! skips recently freed inodes one by one when allocating), on tmpfs it costs little and
//! the cleanup is one unmount. The tmpfs may take half of the memory available when the
//! build starts; with less than [`MIN_SIZE`] of that, or when the mount is refused, the
//! build uses the directory as it is.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Below this, scratch stays on disk.
const MIN_SIZE: u64 = 1 << 30;

/// A tmpfs over a directory, detached on drop (before the directory itself is removed).
#[derive(Debug)]
pub struct Tmpfs {
    dir: Option<PathBuf>,
}

impl Tmpfs {
    /// Mounts a tmpfs on `dir`; a refused mount leaves `dir` as it is.
    pub fn mount(dir: &Path) -> Tmpfs {
        let size = available_memory().map_or(0, |m| m / 2);
        if size < MIN_SIZE {
            return Tmpfs { dir: None };
        }
        let mounted = mount(
            Some("skiff-build"),
            dir,
            Some("tmpfs"),
            // No nosuid/nodev: what steps make here (whiteout devices, setuid files) must
            // behave as on disk.
            MsFlags::empty(),
            Some(format!("mode=0700,size={size}").as_str()),
        );
        Tmpfs {
            dir: mounted.is_ok().then(|| dir.to_path_buf()),
        }
    }
}

/// MemAvailable from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            // Detach: overlay mounts of steps still below go with it.
            let _ = umount2(dir, MntFlags::MNT_DETACH);
        }
    }
}
