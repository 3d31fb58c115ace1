//! `delete`: containerd's cleanup when a shim is gone. Force-deletes the
//! container with the runtime, unmounts its rootfs, removes the dead shim's
//! socket, and prints the exit (killed, 137) as a protobuf DeleteResponse.

use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use tracing::warn;

use crate::events::timestamp;
use crate::flags::Flags;
use crate::logging;
use crate::mount;
use crate::options::Options;
use crate::runtime::Runtime;
use crate::socket;

pub fn run(flags: &Flags) -> Result<()> {
    // containerd reads stdout (the response) and stderr apart here.
    logging::init(flags.debug);
    let bundle = match &flags.bundle {
        Some(b) => PathBuf::from(b),
        None => std::env::current_dir().context("no bundle directory")?,
    };
    let opts = Options::load(&bundle)?;
    let rt = Runtime {
        binary: opts.binary(),
        root: opts.root(&flags.namespace),
        systemd_cgroup: opts.systemd_cgroup,
        log: None,
    };
    match rt.delete(&flags.id, true).output() {
        Ok(out) if !out.status.success() => warn!(
            "{} delete --force {}: {}",
            rt.binary.display(),
            flags.id,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => {}
        Err(e) => warn!("cannot run {}: {e}", rt.binary.display()),
    }
    mount::unmount_all(&bundle.join("rootfs"));
    remove_dead_socket(&bundle);
    let resp = DeleteResponse {
        exit_status: 128 + nix::sys::signal::Signal::SIGKILL as u32,
        exited_at: Some(timestamp(SystemTime::now())).into(),
        ..Default::default()
    };
    let bytes = resp.write_to_bytes()?;
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}

/// The dead shim's socket, named by the bundle's address file. Kept while a
/// shim still answers on it (one shim serves a whole pod).
fn remove_dead_socket(bundle: &Path) {
    let Ok(address) = fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let path = socket::path_of(address.trim());
    if !path.starts_with(socket::SOCKET_DIR) || UnixStream::connect(path).is_ok() {
        return;
    }
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!("cannot remove {}: {e}", path.display());
        }
    }
}
