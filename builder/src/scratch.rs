//! The build's scratch space in memory: a private tmpfs mounted over the work dir. Steps
//! create and the end of the build deletes thousands of files there (snapshot upper dirs,
//! unpacked layers); on a disk filesystem that costs seconds (ext4 without a journal even
//! skips recently freed inodes one by one when allocating), on tmpfs it costs little and
//! the cleanup is one unmount. By default the tmpfs may take half of the memory available
//! when the build starts; with less than [`MIN_SIZE`] of that, when the user said
//! `--scratch-memory 0`, or when the mount is refused, the build uses the directory as it
//! is. A build that fills the tmpfs runs again on disk (see `build`).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::statvfs;

use crate::options::ScratchMemory;

/// Below this, scratch stays on disk.
const MIN_SIZE: u64 = 1 << 30;

/// A tmpfs over a directory, detached on drop (before the directory itself is removed).
#[derive(Debug)]
pub struct Tmpfs {
    dir: Option<PathBuf>,
}

impl Tmpfs {
    /// Mounts a tmpfs of the size `memory` allows on `dir`; no size or a refused mount
    /// leaves `dir` as it is.
    pub fn mount(dir: &Path, memory: ScratchMemory) -> Tmpfs {
        let size = match memory {
            ScratchMemory::Auto => available_memory()
                .map(|m| m / 2)
                .filter(|s| *s >= MIN_SIZE)
                .unwrap_or(0),
            ScratchMemory::Limit(bytes) => bytes,
        };
        if size == 0 {
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

impl Tmpfs {
    /// Whether the scratch is a tmpfs that is (almost) full: what a step that failed then
    /// most likely ran into.
    pub fn is_full(&self) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        let Ok(st) = statvfs(dir) else {
            return false;
        };
        let block = st.fragment_size();
        let total = st.blocks().saturating_mul(block);
        let free = st.blocks_available().saturating_mul(block);
        // Less than 1/64 of it left, or less than 4 MiB.
        free < (total / 64).max(4 << 20)
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
