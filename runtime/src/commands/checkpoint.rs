//! `skiff checkpoint` / `skiff restore`: save a running container's processes
//! to disk with CRIU, and (in runc) start them again from there.
//!
//! Checkpoint goes through libcontainer, which drives CRIU. libcontainer 0.7
//! has no restore, so `restore` accepts runc's flags and then says it is not
//! supported. Both first make sure the criu binary exists, so a host without
//! CRIU gets a clear error and nothing is touched.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use libcontainer::container::{CheckpointOptions, ContainerStatus};

use crate::cli::GlobalOpts;
use crate::commands::create::explain;
use crate::container;
use crate::lock::ContainerLock;

/// How CRIU treats the container's cgroups (runc's --manage-cgroups-mode).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupsMode {
    /// Restore cgroup properties only if the cgroups were created by CRIU
    Soft,
    /// Always restore all cgroups and their properties
    Full,
    /// Restore all cgroups and properties, failing if a cgroup already exists
    Strict,
    /// Leave cgroups alone
    Ignore,
}

impl CgroupsMode {
    fn criu(self) -> rust_criu::CgMode {
        match self {
            CgroupsMode::Soft => rust_criu::CgMode::SOFT,
            CgroupsMode::Full => rust_criu::CgMode::FULL,
            CgroupsMode::Strict => rust_criu::CgMode::STRICT,
            CgroupsMode::Ignore => rust_criu::CgMode::IGNORE,
        }
    }
}

/// The CRIU flags checkpoint and restore share, as runc names them.
#[derive(Args, Debug)]
pub struct CriuOpts {
    /// Directory of the CRIU image files (default: ./checkpoint)
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,

    /// Directory for CRIU's work files and logs (default: the image directory)
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,

    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,

    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,

    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,

    /// Checkpoint and restore file locks
    #[arg(long)]
    pub file_locks: bool,

    /// How CRIU handles the container's cgroups
    #[arg(long, value_enum, value_name = "MODE")]
    pub manage_cgroups_mode: Option<CgroupsMode>,

    /// Namespace to create but not restore the properties of (not supported by skiff)
    #[arg(long, value_name = "NAMESPACE")]
    pub empty_ns: Vec<String>,

    /// Deduplicate memory images automatically (not supported by skiff)
    #[arg(long)]
    pub auto_dedup: bool,

    /// Restore memory pages lazily with userfaultfd (not supported by skiff)
    #[arg(long)]
    pub lazy_pages: bool,
}

/// Checkpoints a running container with CRIU
#[derive(Args, Debug)]
#[command(
    after_long_help = "Needs the criu binary (--criu, default: criu on PATH). \
Without --leave-running the container is stopped and deleted once its image is written."
)]
pub struct Checkpoint {
    #[command(flatten)]
    pub criu: CriuOpts,

    /// Directory of a previous pre-dump (not supported by skiff)
    #[arg(long, value_name = "DIR")]
    pub parent_path: Option<PathBuf>,

    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub leave_running: bool,

    /// File descriptor CRIU writes to when lazy pages are ready (not supported by skiff)
    #[arg(long, value_name = "FD")]
    pub status_fd: Option<i32>,

    /// ADDRESS:PORT of a CRIU page server (not supported by skiff)
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,

    /// Dump only memory, leaving the container running (not supported by skiff)
    #[arg(long)]
    pub pre_dump: bool,

    /// Container id
    pub id: String,
}

/// Restores a container from a CRIU checkpoint (not supported by skiff)
#[derive(Args, Debug)]
#[command(
    after_long_help = "skiff accepts runc's restore flags but cannot restore yet: \
its container library (libcontainer 0.7) has no CRIU restore. The command always fails."
)]
pub struct Restore {
    /// Unix socket that receives the master end of the console pty
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    #[command(flatten)]
    pub criu: CriuOpts,

    /// Path to the bundle directory
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,

    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,

    /// Write the restored process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Do not make skiff a subreaper for the restored process
    #[arg(long)]
    pub no_subreaper: bool,

    /// Do not use pivot_root to enter the root filesystem
    #[arg(long)]
    pub no_pivot: bool,

    /// LSM profile for the restored process (TYPE:NAME)
    #[arg(long, value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,

    /// LSM mount context for the restored container
    #[arg(long, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,

    /// Container id
    pub id: String,
}

impl Checkpoint {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        self.refuse_unsupported()?;
        container::validate_id(&self.id)?;
        use_criu(&g.criu)?;
        let criu = &self.criu;
        let image_path = absolute(
            criu.image_path
                .clone()
                .unwrap_or_else(|| "checkpoint".into()),
        )?;
        let work_path = criu.work_path.clone().map(absolute).transpose()?;

        let lock = ContainerLock::acquire(&g.root, &self.id)?;
        let mut c = container::load(&g.root, &self.id)?;
        let status = c.status();
        if status != ContainerStatus::Running {
            bail!(
                "container {} cannot be checkpointed in {} state",
                self.id,
                container::status_name(status)
            );
        }
        let opts = CheckpointOptions {
            ext_unix_sk: criu.ext_unix_sk,
            file_locks: criu.file_locks,
            image_path,
            leave_running: self.leave_running,
            shell_job: criu.shell_job,
            tcp_established: criu.tcp_established,
            work_path,
            manage_cgroups_mode: criu
                .manage_cgroups_mode
                .map(CgroupsMode::criu)
                .unwrap_or(rust_criu::CgMode::DEFAULT),
            link_remap: false,
        };
        // CRIU writes its log to the work directory, else the image directory.
        let log = opts
            .work_path
            .as_ref()
            .unwrap_or(&opts.image_path)
            .join("dump.log");
        c.checkpoint(&opts).map_err(explain).with_context(|| {
            format!(
                "checkpoint of container {} failed (CRIU's log, if it got that far: {})",
                self.id,
                log.display()
            )
        })?;
        // Without --leave-running libcontainer deletes the container.
        if !container::dir(&g.root, &self.id).exists() {
            lock.remove();
        }
        Ok(())
    }

    fn refuse_unsupported(&self) -> Result<()> {
        let unsupported = [
            ("--parent-path", self.parent_path.is_some()),
            ("--lazy-pages", self.criu.lazy_pages),
            ("--status-fd", self.status_fd.is_some()),
            ("--page-server", self.page_server.is_some()),
            ("--pre-dump", self.pre_dump),
            ("--empty-ns", !self.criu.empty_ns.is_empty()),
            ("--auto-dedup", self.criu.auto_dedup),
        ];
        if let Some((flag, _)) = unsupported.iter().find(|(_, given)| *given) {
            bail!("checkpoint {flag} is not supported by skiff");
        }
        Ok(())
    }
}

impl Restore {
    pub fn exec(self, g: &GlobalOpts) -> Result<()> {
        container::validate_id(&self.id)?;
        use_criu(&g.criu)?;
        bail!(
            "restore is not supported: skiff's container library (libcontainer 0.7) \
             cannot restore a container from CRIU images"
        )
    }
}

/// Makes sure the criu binary exists and that libcontainer, which always runs
/// "criu" from PATH, runs this one.
fn use_criu(criu: &Path) -> Result<()> {
    let found = if criu.components().count() > 1 {
        Some(criu.to_path_buf()).filter(|p| is_executable(p))
    } else {
        find_in_path(criu)
    };
    let Some(found) = found.map(absolute).transpose()? else {
        bail!(
            "checkpoint/restore not supported: criu not found ({} {})",
            criu.display(),
            if criu.components().count() > 1 {
                "is not an executable file"
            } else {
                "is not on PATH"
            }
        );
    };
    if find_in_path(Path::new("criu")).as_deref() == Some(found.as_path()) {
        return Ok(());
    }
    if found.file_name() != Some("criu".as_ref()) {
        bail!(
            "--criu {}: the CRIU binary must be named \"criu\" (libcontainer runs it by that name)",
            criu.display()
        );
    }
    let dir = found.parent().unwrap_or(Path::new("/"));
    let mut path = OsString::from(dir.as_os_str());
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    // skiff is single-threaded here; libcontainer reads PATH when it spawns criu.
    std::env::set_var("PATH", path);
    Ok(())
}

fn find_in_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p);
    }
    Ok(std::env::current_dir()
        .context("cannot find the current directory")?
        .join(p))
}
