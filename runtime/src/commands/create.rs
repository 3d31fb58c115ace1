//! `skiff create`: set up a container from a bundle; its process waits for `start`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

use crate::cgroupfs;
use crate::cli::GlobalOpts;
use crate::commands::delete;
use crate::container::{self, Notes};
use crate::copyup;
use crate::executor::SkiffExecutor;
use crate::host_mounts;
use crate::lock::ContainerLock;
use crate::spec_fixups;

#[derive(Args, Debug, Clone)]
pub struct Create {
    /// Path to the bundle directory (holds config.json and the root filesystem)
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,

    /// Unix socket that receives the master end of the console pty (process.terminal)
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    /// Write the container process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Do not use pivot_root to enter the root filesystem (for a rootfs on a ramdisk)
    #[arg(long)]
    pub no_pivot: bool,

    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,

    /// Pass N extra file descriptors (3 to 3+N-1) to the container process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,

    /// Container id: unique under --root
    pub id: String,
}

impl Create {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        container::ensure_root(&g.root)?;
        let lock = ContainerLock::acquire(&g.root, &self.id)?;
        create_locked(g, &self, true)?;
        drop(lock);
        Ok(())
    }
}

/// Creates the container; the caller holds the container lock. On failure
/// everything made so far (state dir, cgroup, private bundle) is removed.
pub fn create_locked(g: &GlobalOpts, opts: &Create, detach: bool) -> Result<Container> {
    let id = &opts.id;
    if container::dir(&g.root, id).exists() {
        bail!("container with id exists: {id}");
    }
    if opts.preserve_fds < 0 {
        bail!("--preserve-fds must not be negative");
    }
    let bundle = std::fs::canonicalize(&opts.bundle)
        .with_context(|| format!("bundle {} not found", opts.bundle.display()))?;
    let loaded = spec_fixups::load(&bundle)?;
    let rootfs = loaded
        .spec
        .root()
        .as_ref()
        .map(|r| bundle.join(r.path()))
        .unwrap_or_default();
    // Without a mount namespace of its own the container mounts into ours:
    // note what is below the rootfs now, so delete removes only its mounts.
    let canonical_rootfs = std::fs::canonicalize(&rootfs).unwrap_or_else(|_| rootfs.clone());
    let host_mounts_before = if shares_mount_namespace(&loaded.spec) {
        Some(host_mounts::below(&canonical_rootfs)?)
    } else {
        None
    };
    let copy_up = copyup::open_sources(&rootfs, &loaded.copy_up)?;
    // A cgroup that is not there yet is this container's to remove if create
    // fails; one that exists already (a pod's, say) is never touched.
    let cgroup_path = libcontainer::utils::get_cgroup_path(
        &loaded
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone()),
        id,
    );
    let cgroup_is_ours = !g.systemd_cgroup && !cgroupfs::exists(&cgroup_path);
    let load_from = if loaded.needs_rewrite {
        spec_fixups::write_private_bundle(&g.root, id, &loaded.spec)?
    } else {
        bundle.clone()
    };

    let result = build(g, opts, &load_from, detach);
    if loaded.needs_rewrite {
        let _ = std::fs::remove_dir_all(&load_from);
    }
    // Mounts libcontainer got wrong are mended now: made, and no process started.
    let result = result.and_then(|c| {
        let pid = c.pid().context("created container has no init pid")?;
        copyup::fill(pid, &copy_up)?;
        Ok(c)
    });
    let mut c = match result {
        Ok(c) => c,
        Err(err) => {
            // Leave nothing behind: a half-made container is deleted with force.
            if let Err(cleanup) = delete::remove_leftovers(&g.root, id) {
                tracing::warn!(target: "skiff", "cleanup after failed create: {cleanup:#}");
            }
            if cgroup_is_ours && cgroupfs::exists(&cgroup_path) {
                if let Err(cleanup) = delete::remove_created_cgroup(id, &cgroup_path) {
                    tracing::warn!(target: "skiff", "cleanup after failed create: {cleanup:#}");
                }
            }
            if let Some(before) = &host_mounts_before {
                if let Err(cleanup) = host_mounts::detach_new(&canonical_rootfs, before) {
                    tracing::warn!(target: "skiff", "cleanup after failed create: {cleanup:#}");
                }
            }
            return Err(err);
        }
    };
    if loaded.needs_rewrite {
        c.state.bundle = bundle.clone();
        c.save().context("cannot save container state")?;
    }
    container::write_notes(
        &c.root,
        &Notes {
            rootfs: canonical_rootfs,
            host_mounts_before,
        },
    )?;
    Ok(c)
}

/// Whether the spec leaves the container in the caller's mount namespace
/// (no `mount` entry at all; one with a path joins another namespace).
fn shares_mount_namespace(spec: &libcontainer::oci_spec::runtime::Spec) -> bool {
    use libcontainer::oci_spec::runtime::LinuxNamespaceType;
    !spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount)
}

fn build(g: &GlobalOpts, opts: &Create, bundle: &Path, detach: bool) -> Result<Container> {
    let c = ContainerBuilder::new(opts.id.clone(), SyscallType::default())
        .with_executor(SkiffExecutor)
        .with_root_path(&g.root)?
        .with_pid_file(opts.pid_file.as_ref())?
        .with_console_socket(opts.console_socket.as_ref())
        .with_preserved_fds(opts.preserve_fds)
        .validate_id()?
        .as_init(bundle)
        .with_systemd(g.systemd_cgroup)
        .with_detach(detach)
        .with_no_pivot(opts.no_pivot)
        .build()
        .map_err(crate::commands::create::explain)?;
    Ok(c)
}

/// libcontainer's errors name the step, their sources the cause: keep both.
pub fn explain(err: libcontainer::error::LibcontainerError) -> anyhow::Error {
    let mut msg = err.to_string();
    let mut src = std::error::Error::source(&err);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    anyhow::anyhow!(msg)
}

/// Whether the bundle's process asks for a terminal; a light read of
/// config.json, ahead of the full one, for `run` to prepare a pty relay.
pub fn wants_terminal(bundle: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Process {
        #[serde(default)]
        terminal: bool,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        process: Option<Process>,
    }
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Config>(&b).ok())
        .and_then(|c| c.process)
        .is_some_and(|p| p.terminal)
}
