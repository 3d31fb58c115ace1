//! `skiff exec`: run a new process inside a running container, with runc
//! 1.1's flags and exit codes.
//!
//! The process is either --process FILE (a process.json, used as given) or
//! the container's own process from config.json with COMMAND and the flags
//! applied on top, as runc does; either way skiff hands libcontainer's tenant
//! builder one complete process.json, so it never fills gaps with defaults of
//! its own. In the foreground skiff waits for the process and returns its exit
//! code (see foreground.rs); failures of exec itself exit 255, as with runc,
//! so callers can tell them from the process's own exit codes.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::oci_spec::runtime::{Capability, LinuxCapabilities, Process};
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::signal::{kill, SigmaskHow, Signal};
use nix::unistd::Pid;

use crate::cli::GlobalOpts;
use crate::commands::create::explain;
use crate::container;
use crate::executor::SkiffExecutor;
use crate::foreground::console::{self, ConsoleSocket, Copying, Pty};
use crate::foreground::{self, Unblocked};
use crate::lock::ContainerLock;
use crate::spec_fixups;

mod seccomp;

/// Exit code of `exec` when skiff itself fails (runc's).
const EXEC_FAILED: i32 = 255;

/// Names libcontainer gives the sockets it leaves in the container's state
/// directory for each exec.
const TENANT_PREFIX: &str = "tenant-";

#[derive(Args, Debug)]
#[command(after_help = "\
Without --process, the process is the container's own (user, capabilities,
rlimits, environment, cwd from config.json) running COMMAND instead, with the
flags applied on top. With --process, the file is used as it is and the flags
that describe the process (--cwd, --env, --user, --cap, --tty, ...) are ignored.

Exit status: the process's exit code, or 128+N when it died of signal N; with
--detach 0 once it has started; 255 when skiff could not start it.")]
pub struct Exec {
    /// Describe the process with this process.json (an OCI `process` object); COMMAND is not needed
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,

    /// Unix socket that receives the master end of the process's pty (needs --tty and --detach)
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    /// Working directory inside the container (an absolute path)
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Set an environment variable, replacing the container's value (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Give the process a pseudo-terminal: relayed to skiff's own stdin and stdout, or with --detach sent to --console-socket
    #[arg(short, long)]
    pub tty: bool,

    /// Run as this numeric user and, optionally, group
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// Add a supplementary group (repeatable)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,

    /// SELinux label of the process
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,

    /// AppArmor profile of the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,

    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,

    /// Add a capability, e.g. CAP_NET_ADMIN, to the bounding, effective and permitted sets (repeatable)
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,

    /// Return once the process has started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,

    /// Write the process's host pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Pass N extra file descriptors (3 to 3+N-1) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,

    /// Run the process in this existing sub-cgroup of the container's cgroup
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<String>,

    /// Allow exec into a paused container (the process starts frozen)
    #[arg(long)]
    pub ignore_paused: bool,

    /// Container id
    pub id: String,

    /// The command to run and its arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

impl Exec {
    pub fn exec(self, g: &GlobalOpts) -> Result<i32> {
        match self.run(g) {
            Ok(code) => Ok(code),
            Err(err) => {
                // runc's 255 for "exec failed": report here, as dispatch would exit 1.
                let err = err.context("exec failed");
                crate::error::report(&err, crate::logging::init(g).as_ref());
                Ok(EXEC_FAILED)
            }
        }
    }

    fn run(&self, g: &GlobalOpts) -> Result<i32> {
        container::validate_id(&self.id)?;
        if self.preserve_fds < 0 {
            bail!("--preserve-fds must not be negative");
        }
        let absolute = |p: &Option<PathBuf>, flag: &str| {
            p.as_deref()
                .map(std::path::absolute)
                .transpose()
                .with_context(|| flag.to_owned())
        };
        let console_socket = absolute(&self.console_socket, "--console-socket")?;
        let pid_file = absolute(&self.pid_file, "--pid-file")?;
        let from_file = match &self.process {
            Some(path) => Some(read_process_file(path)?),
            None => None,
        };
        if from_file.is_none() && self.command.is_empty() {
            bail!("process args cannot be empty: give COMMAND or --process FILE");
        }

        if !self.detach {
            // The process is our child; as subreaper we also get what it leaves behind.
            nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
        }
        let set = foreground::signal_set();
        if !self.detach {
            set.thread_block().context("blocking signals")?;
        }
        let (pid, relay) = self.start(g, from_file, console_socket)?;

        let started = || -> Result<Option<(Pty, Copying)>> {
            if let Some(path) = &pid_file {
                write_pid_file(path, pid)?;
            }
            relay.map(console::relay).transpose()
        };
        let pty = match started() {
            Ok(pty) => pty,
            Err(err) => {
                // Nobody would know of the process, or could talk to it.
                let _ = kill(pid, Signal::SIGKILL);
                return Err(err);
            }
        };
        if self.detach {
            return Ok(0);
        }

        let code = foreground::wait_relaying(pid, &set, pty);
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        Ok(code)
    }

    /// Starts the process under the container lock. Returns its pid and, for
    /// a foreground tty, the socket its pty master waits on.
    fn start(
        &self,
        g: &GlobalOpts,
        from_file: Option<Process>,
        console_socket: Option<PathBuf>,
    ) -> Result<(Pid, Option<ConsoleSocket>)> {
        let sub_cgroup = sub_cgroup(&self.cgroup)?;
        let lock = ContainerLock::acquire(&g.root, &self.id)?;
        let c = container::load(&g.root, &self.id)?;
        match c.status() {
            ContainerStatus::Running => {}
            ContainerStatus::Paused if self.ignore_paused => {}
            ContainerStatus::Paused => {
                bail!("cannot exec in a paused container (use --ignore-paused to override)")
            }
            ContainerStatus::Stopped => bail!("cannot exec in a stopped container"),
            ContainerStatus::Created => bail!("cannot exec in a created container: start it first"),
            ContainerStatus::Creating => {
                bail!("cannot exec in a container that is still being created")
            }
        }
        // A process joining a frozen cgroup freezes before its execve, holding
        // an inherited copy of the lock, and `resume` could never take it: so
        // exec into a paused container waits for `resume` unlocked, as runc's does.
        let lock = (c.status() != ContainerStatus::Paused).then_some(lock);
        if let (Some(sub), Some(init)) = (&sub_cgroup, c.pid()) {
            check_sub_cgroup(init, sub)?;
        }

        let spec = spec_fixups::load(c.bundle())?.spec;
        let mut process = match from_file {
            Some(p) => p,
            None => self.apply_flags(spec.process().clone().unwrap_or_default())?,
        };
        let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
        if let Some(filter) = &seccomp {
            seccomp::prepare(&mut process, filter)?;
        }
        let terminal = process.terminal().unwrap_or(false);
        check_console(terminal, self.detach, console_socket.is_some())?;
        let state_dir = container::dir(&g.root, &self.id);
        // A foreground tty: skiff takes the pty master itself and relays it.
        let relay = if terminal && !self.detach {
            if process.console_size().is_none() {
                process.set_console_size(console::terminal_size());
            }
            Some(ConsoleSocket::bind(&state_dir)?)
        } else {
            None
        };
        let socket = relay
            .as_ref()
            .map(|r| r.path().to_path_buf())
            .or(console_socket);

        let process_file = process_memfd(&process)?;
        let process_path = PathBuf::from(format!("/proc/self/fd/{}", process_file.as_raw_fd()));
        let before = tenant_files(&state_dir);
        let built = ContainerBuilder::new(self.id.clone(), SyscallType::default())
            .with_executor(Unblocked(console::Sized(seccomp::Filtered {
                inner: SkiffExecutor,
                seccomp,
            })))
            .with_root_path(&g.root)?
            .with_console_socket(socket.as_ref())
            .with_preserved_fds(self.preserve_fds)
            .as_tenant()
            .with_process(Some(&process_path))
            // libcontainer only checks with it that a tty has a console socket.
            .with_detach(self.detach || relay.is_some())
            .with_ignore_paused(self.ignore_paused)
            .with_sub_cgroup(sub_cgroup)
            .with_process_label(self.process_label.clone())
            .build()
            .map_err(explain);
        // The notify and console sockets have served their purpose either way;
        // under the lock no other exec is using its own.
        let lock = lock.or_else(|| ContainerLock::acquire(&g.root, &self.id).ok());
        if lock.is_some() {
            for name in tenant_files(&state_dir).difference(&before) {
                let _ = fs::remove_file(state_dir.join(name));
            }
        }
        Ok((built?, relay))
    }

    /// The container's process with COMMAND and the flags applied, as runc does.
    fn apply_flags(&self, mut p: Process) -> Result<Process> {
        let args = self
            .command
            .iter()
            .map(|a| {
                a.clone()
                    .into_string()
                    .map_err(|a| anyhow::anyhow!("argument {a:?} is not valid UTF-8"))
            })
            .collect::<Result<Vec<_>>>()?;
        p.set_args(Some(args));
        if let Some(cwd) = &self.cwd {
            if !cwd.is_absolute() {
                bail!("--cwd {}: must be an absolute path", cwd.display());
            }
            p.set_cwd(cwd.clone());
        }
        if let Some(profile) = &self.apparmor {
            p.set_apparmor_profile(Some(profile.clone()));
        }
        if let Some(label) = &self.process_label {
            p.set_selinux_label(Some(label.clone()));
        }
        if !self.cap.is_empty() {
            p.set_capabilities(Some(add_capabilities(p.capabilities().clone(), &self.cap)?));
        }
        if !self.env.is_empty() {
            p.set_env(Some(merge_env(
                p.env().clone().unwrap_or_default(),
                &self.env,
            )?));
        }
        p.set_terminal(Some(self.tty));
        if self.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if let Some(user) = &self.user {
            let (uid, gid) = parse_user(user)?;
            p.user_mut().set_uid(uid);
            if let Some(gid) = gid {
                p.user_mut().set_gid(gid);
            }
        }
        if !self.additional_gids.is_empty() {
            let mut gids = p.user().additional_gids().clone().unwrap_or_default();
            gids.extend(&self.additional_gids);
            p.user_mut().set_additional_gids(Some(gids));
        }
        check_process(&p, "the container's process")?;
        Ok(p)
    }
}

/// Reads --process FILE; every error names the file.
fn read_process_file(path: &Path) -> Result<Process> {
    let text =
        fs::read(path).with_context(|| format!("cannot read process file {}", path.display()))?;
    let p: Process = serde_json::from_slice(&text)
        .with_context(|| format!("{}: invalid process", path.display()))?;
    check_process(&p, &path.display().to_string())?;
    Ok(p)
}

/// The checks runc makes on any process before it starts.
fn check_process(p: &Process, source: &str) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("{source}: args must not be empty");
    }
    if p.cwd().as_os_str().is_empty() {
        bail!("{source}: cwd must not be empty");
    }
    if !p.cwd().is_absolute() {
        bail!(
            "{source}: cwd {} must be an absolute path",
            p.cwd().display()
        );
    }
    Ok(())
}

/// runc's rules for --tty, --detach and --console-socket.
fn check_console(terminal: bool, detach: bool, has_socket: bool) -> Result<()> {
    if detach && terminal && !has_socket {
        bail!("cannot allocate tty if skiff will detach without setting console socket");
    }
    if (!detach || !terminal) && has_socket {
        bail!("cannot use console socket if skiff will not detach or allocate tty");
    }
    Ok(())
}

/// --cap: added to the bounding, effective and permitted sets; to the ambient
/// set only when the process has inheritable capabilities, as runc (since the
/// fix for CVE-2022-29162) and libcontainer do.
/// A capability section with every set absent (oci-spec's default fills them).
pub fn no_capabilities() -> LinuxCapabilities {
    let mut none = LinuxCapabilities::default();
    none.set_bounding(None)
        .set_effective(None)
        .set_permitted(None)
        .set_inheritable(None)
        .set_ambient(None);
    none
}

fn add_capabilities(
    caps: Option<LinuxCapabilities>,
    names: &[String],
) -> Result<LinuxCapabilities> {
    let mut add = Vec::with_capacity(names.len());
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| anyhow::anyhow!("--cap {name:?}: unknown capability"))?;
        add.push(cap);
    }
    let mut caps = caps.unwrap_or_else(no_capabilities);
    let grow = |set: &Option<_>| {
        let mut set: HashSet<Capability> = set.clone().unwrap_or_default();
        set.extend(add.iter().copied());
        Some(set)
    };
    let (bounding, effective, permitted) = (
        grow(caps.bounding()),
        grow(caps.effective()),
        grow(caps.permitted()),
    );
    caps.set_bounding(bounding)
        .set_effective(effective)
        .set_permitted(permitted);
    if caps.inheritable().is_some() {
        let ambient = grow(caps.ambient());
        caps.set_ambient(ambient);
    }
    Ok(caps)
}

/// --env KEY=VALUE replaces KEY's value from config.json, or adds it.
fn merge_env(mut env: Vec<String>, overrides: &[String]) -> Result<Vec<String>> {
    for kv in overrides {
        let Some((key, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("--env {kv:?}: expected KEY=VALUE");
        };
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    Ok(env)
}

/// --user UID[:GID], numeric as in runc.
fn parse_user(text: &str) -> Result<(u32, Option<u32>)> {
    let (uid, gid) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let uid = uid
        .parse()
        .map_err(|_| anyhow::anyhow!("--user {text:?}: uid {uid:?} is not a number"))?;
    let gid = gid
        .map(|g| {
            g.parse()
                .map_err(|_| anyhow::anyhow!("--user {text:?}: gid {g:?} is not a number"))
        })
        .transpose()?;
    Ok((uid, gid))
}

/// --cgroup: `[CONTROLLERS:]PATH`, relative to the container's cgroup as with
/// runc (a leading `/` is the container's own cgroup; `/` alone means no
/// sub-cgroup). libcontainer moves the process into one sub-cgroup, so
/// per-controller values must name the same path.
fn sub_cgroup(values: &[String]) -> Result<Option<String>> {
    let mut chosen: Option<String> = None;
    for value in values {
        let path = value.split_once(':').map_or(value.as_str(), |(_, p)| p);
        let p = Path::new(path);
        if p.components().any(|c| c == std::path::Component::ParentDir) {
            bail!("--cgroup {value:?}: must be a path below the container's cgroup");
        }
        let rel = path.trim_matches('/').to_owned();
        match &chosen {
            Some(prev) if *prev != rel => bail!(
                "--cgroup: per-controller sub-cgroups must be the same path here \
                 ({prev:?} and {rel:?})"
            ),
            _ => chosen = Some(rel),
        }
    }
    Ok(chosen.filter(|p| !p.is_empty()))
}

/// The sub-cgroup must exist below the container's cgroup in every hierarchy
/// the container uses, as runc requires: libcontainer would create it, and a
/// cgroup with a child left in it cannot be deleted with the container.
fn check_sub_cgroup(init: Pid, sub: &str) -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    let unified = root.join("cgroup.controllers").exists();
    let own = format!("/proc/{init}/cgroup");
    let text = fs::read_to_string(&own).with_context(|| format!("cannot read {own}"))?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // cgroup v2: the one "0::" line; v1: each controller's hierarchy.
        let dir = match (unified, controllers.split(',').next()) {
            (true, Some("")) => root.to_path_buf(),
            // v1 hierarchies the container has no cgroup of its own in are not used.
            (false, Some(first))
                if !first.is_empty() && !first.starts_with("name=") && path != "/" =>
            {
                root.join(first)
            }
            _ => continue,
        };
        let want = dir.join(path.trim_start_matches('/')).join(sub);
        if !want.is_dir() {
            bail!("--cgroup {sub:?}: {} does not exist", want.display());
        }
    }
    Ok(())
}

/// The process as an anonymous file libcontainer reads by path: nothing to
/// clean up, whatever happens.
fn process_memfd(p: &Process) -> Result<File> {
    let fd = memfd_create(c"skiff-exec-process", MemFdCreateFlag::MFD_CLOEXEC)
        .context("memfd_create")?;
    let mut file = File::from(fd);
    file.write_all(&serde_json::to_vec(p)?)
        .context("writing the process spec")?;
    Ok(file)
}

/// Writes the pid as runc does: to a temporary file beside `path`, renamed
/// over it, so a reader never sees a partial pid.
fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, pid.to_string())
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("cannot write pid file {}", path.display()))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

fn tenant_files(dir: &Path) -> HashSet<OsString> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .filter(|n| n.as_encoded_bytes().starts_with(TENANT_PREFIX.as_bytes()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(parse_user("1000").ok(), Some((1000, None)));
        assert_eq!(parse_user("1000:100").ok(), Some((1000, Some(100))));
        assert!(parse_user("root").is_err());
        assert!(parse_user("1:x").is_err());
        assert!(parse_user("").is_err());
    }

    #[test]
    fn env_overrides_by_key() -> Result<()> {
        let env = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        let out = merge_env(env, &["A=2".to_owned(), "B=".to_owned()])?;
        assert_eq!(out, ["PATH=/bin", "A=2", "B="]);
        assert!(merge_env(vec![], &["NOEQUALS".to_owned()]).is_err());
        assert!(merge_env(vec![], &["=x".to_owned()]).is_err());
        Ok(())
    }

    #[test]
    fn caps_are_added_without_touching_inheritable() -> Result<()> {
        let caps = add_capabilities(None, &["CAP_NET_ADMIN".to_owned(), "sys_admin".to_owned()])?;
        let want: HashSet<_> = [Capability::NetAdmin, Capability::SysAdmin].into();
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.permitted().as_ref(), Some(&want));
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        assert!(add_capabilities(None, &["CAP_NOPE".to_owned()]).is_err());
        Ok(())
    }

    #[test]
    fn console_rules() {
        assert!(check_console(true, true, true).is_ok());
        assert!(check_console(false, false, false).is_ok());
        assert!(check_console(false, true, false).is_ok());
        assert!(check_console(true, true, false).is_err());
        assert!(check_console(false, true, true).is_err());
        assert!(check_console(true, false, true).is_err());
        assert!(check_console(true, false, false).is_ok());
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(sub_cgroup(&[]).ok(), Some(None));
        assert_eq!(
            sub_cgroup(&["a/b".to_owned()]).ok(),
            Some(Some("a/b".to_owned()))
        );
        assert_eq!(sub_cgroup(&["/".to_owned()]).ok(), Some(None));
        assert_eq!(
            sub_cgroup(&["/a".to_owned()]).ok(),
            Some(Some("a".to_owned()))
        );
        assert_eq!(
            sub_cgroup(&["cpu:a".to_owned(), "memory:/a/".to_owned()]).ok(),
            Some(Some("a".to_owned()))
        );
        assert!(sub_cgroup(&["cpu:a".to_owned(), "memory:b".to_owned()]).is_err());
        assert!(sub_cgroup(&["a/../../b".to_owned()]).is_err());
    }
}
