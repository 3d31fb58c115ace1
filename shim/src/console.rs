//! The console socket: the runtime connects to it and sends the master end
//! of the container process's pty (SCM_RIGHTS).

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

static NEXT: AtomicU64 = AtomicU64::new(0);

pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// A fresh socket in the temp dir (bundle paths can be too long for a socket).
    pub fn new() -> Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("skiff-pty-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the runtime sent. Called after the runtime command returned,
    /// so the connection is already queued; never blocks.
    pub fn receive(&self) -> Result<File> {
        self.listener.set_nonblocking(true)?;
        let (conn, _) = match self.listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                bail!("the runtime did not connect to the console socket")
            }
            Err(e) => return Err(e).context("console socket"),
        };
        conn.set_nonblocking(false)?;
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("cannot receive the pty master")?;
        for cmsg in msg.cmsgs().context("console socket: bad control message")? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                // All owned at once, so any fd past the first one closes.
                let owned: Vec<OwnedFd> = fds
                    .into_iter()
                    .map(|fd| {
                        // SAFETY: SCM_RIGHTS just installed `fd` in our table; nothing else owns it.
                        unsafe { OwnedFd::from_raw_fd(fd) }
                    })
                    .collect();
                if let Some(master) = owned.into_iter().next() {
                    return Ok(File::from(master));
                }
            }
        }
        bail!("the runtime sent no pty master on the console socket")
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
