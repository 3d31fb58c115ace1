//! Network namespace files: `RUN_DIR/netns/<id>`, a bind mount of a new
//! network namespace (as `ip netns add` makes them) that the runtime joins by
//! path and netavark configures.
//!
//! The namespace is made by `unshare(CLONE_NEWNET)` in a short-lived thread,
//! so the calling thread's namespace never changes; its `lo` is brought up
//! there (docker's `none` network has `lo` up; netavark also does it on setup).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use super::error::NetError;
use super::fsutil;

/// A network namespace file made by [`Netns::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    pub path: PathBuf,
}

/// Where the namespace files of `run_dir` live.
pub fn netns_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("netns")
}

fn check_id(id: &str) -> Result<(), NetError> {
    let bad = |reason| NetError::InvalidContainerId {
        id: id.to_string(),
        reason,
    };
    if id.is_empty() || id == "." || id == ".." {
        return Err(bad("empty, . or .."));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(bad("only letters, digits and _.- are allowed"));
    }
    Ok(())
}

impl Netns {
    /// A new network namespace bound at `RUN_DIR/netns/<id>`, with `lo` up.
    /// Fails if a namespace of that id exists; a stale plain file left by a
    /// crash is replaced.
    pub fn create(run_dir: &Path, id: &str) -> Result<Netns, NetError> {
        check_id(id)?;
        let dir = netns_dir(run_dir);
        fsutil::create_dir(&dir)?;
        let path = dir.join(id);
        let mut created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path);
        if matches!(&created, Err(e) if e.kind() == io::ErrorKind::AlreadyExists) {
            if is_netns(&path) {
                return Err(NetError::Netns {
                    path,
                    step: "creating the namespace file",
                    source: nix::Error::EEXIST,
                });
            }
            fsutil::remove_file(&path)?;
            created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&path);
        }
        drop(created.map_err(NetError::io("creating the namespace file", &path))?);
        let target = path.clone();
        // A thread of its own: unshare changes only the calling thread's
        // namespace, and the thread ends right after binding it.
        let result = std::thread::spawn(move || -> Result<(), (&'static str, nix::Error)> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ("unshare(CLONE_NEWNET)", e))?;
            set_loopback_up().map_err(|e| ("bringing lo up", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| ("bind-mounting /proc/thread-self/ns/net", e))
        })
        .join();
        let failure = match result {
            Ok(Ok(())) => return Ok(Netns { path }),
            Ok(Err((step, source))) => NetError::Netns {
                path: path.clone(),
                step,
                source,
            },
            Err(_) => NetError::Netns {
                path: path.clone(),
                step: "the namespace thread panicked",
                source: nix::Error::EIO,
            },
        };
        let _ = fs::remove_file(&path);
        Err(failure)
    }

    /// The namespace file of `id`, if it exists and is a mounted namespace.
    pub fn open(run_dir: &Path, id: &str) -> Option<Netns> {
        check_id(id).ok()?;
        let path = netns_dir(run_dir).join(id);
        is_netns(&path).then_some(Netns { path })
    }

    /// Unmounts (detached: users keep theirs) and deletes the file. The
    /// namespace itself goes when its last process or reference does.
    pub fn remove(self) -> Result<(), NetError> {
        match umount2(&self.path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (already unmounted); ENOENT: gone.
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(source) => {
                return Err(NetError::Netns {
                    path: self.path,
                    step: "unmounting",
                    source,
                })
            }
        }
        fsutil::remove_file(&self.path)
    }
}

/// Whether `path` is a network namespace (an nsfs file).
pub(crate) fn is_netns(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Runs `f` in a thread that has joined the namespace at `path`. Processes
/// spawned by `f` start in that namespace.
pub(crate) fn run_in<R: Send>(path: &Path, f: impl FnOnce() -> R + Send) -> Result<R, NetError> {
    let file = File::open(path).map_err(NetError::io("opening the network namespace", path))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
                    NetError::Netns {
                        path: path.to_owned(),
                        step: "setns",
                        source,
                    }
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetError::Netns {
                    path: path.to_owned(),
                    step: "a thread in the namespace panicked",
                    source: nix::Error::EIO,
                })
            })
    })
}

/// Whether the calling thread's namespace has an interface `name`.
pub(crate) fn has_interface(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Sets IFF_UP on `lo` of the calling thread's network namespace.
fn set_loopback_up() -> Result<(), nix::Error> {
    let name = CString::new("lo").map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: a plain socket(2) call; the result is checked and closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes_with_nul()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: fd is an open socket and req a valid ifreq naming "lo"; the
    // ioctls read and write only that struct. ifru_flags is the member
    // SIOCGIFFLAGS fills and SIOCSIFFLAGS reads.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(nix::Error::last())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(nix::Error::last())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    result
}
