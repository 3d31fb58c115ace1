//! How the container's process is executed. libcontainer's default executor
//! refuses a spec without PATH even when args[0] is absolute, and uses the
//! runtime's own environment for the PATH search; this one follows runc: a
//! name with a '/' is used as given, other names are looked up in the PATH of
//! the process's own environment.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::{SigSet, SigmaskHow};

#[derive(Clone, Default)]
pub struct SkiffExecutor;

fn process_args(spec: &Spec) -> Result<(&[String], &[String]), String> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| "config.json has no process".to_owned())?;
    let args = process
        .args()
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| "process.args must not be empty".to_owned())?;
    let env = process.env().as_deref().unwrap_or(&[]);
    Ok((args, env))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolves args[0] the way runc does, or explains why it cannot.
fn resolve(arg0: &str, env: &[String]) -> Result<PathBuf, String> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Err(format!("exec: {arg0:?}: is a directory")),
            Ok(_) if !is_executable(&p) => Err(format!("exec: {arg0:?}: permission denied")),
            Ok(_) => Ok(p),
            Err(e) => Err(format!("exec: {arg0:?}: {e}")),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(arg0))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("exec: {arg0:?}: executable file not found in $PATH"))
}

fn cstrings(items: &[String]) -> Result<Vec<CString>, String> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

/// Ignored signals and the signal mask survive execve: Rust's runtime ignores
/// SIGPIPE, and skiff's caller may ignore others. The container's process
/// starts with every disposition at its default and nothing blocked, as
/// under runc. The raw syscall reaches the signals glibc keeps for itself.
fn reset_signals() {
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a valid kernel_sigaction for a default
        // disposition (no handler runs) and writes nothing (null old action).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

impl Executor for SkiffExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let (args, _) = process_args(spec).map_err(ExecutorError::Other)?;
        // libcontainer has already put the final environment in place with
        // setup_envs (the spec's env plus what it derives, such as HOME).
        let envp: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend(v.into_encoded_bytes());
                CString::new(kv)
            })
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        let search: Vec<String> = std::env::var("PATH")
            .map(|p| vec![format!("PATH={p}")])
            .unwrap_or_default();
        let path = resolve(&args[0], &search).map_err(ExecutorError::Other)?;
        let path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| ExecutorError::InvalidArg)?;
        let argv = cstrings(args).map_err(ExecutorError::Other)?;
        reset_signals();
        let err = nix::unistd::execve(&path, &argv, &envp).err();
        Err(ExecutorError::Other(format!(
            "exec {:?}: {}",
            args[0],
            err.map(|e| e.desc()).unwrap_or("failed")
        )))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let (args, env) =
            process_args(spec).map_err(ExecutorValidationError::ArgValidationError)?;
        resolve(&args[0], env)
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_path_needs_no_path_variable() {
        assert_eq!(resolve("/bin/sh", &[]).ok(), Some(PathBuf::from("/bin/sh")));
    }

    #[test]
    fn name_is_searched_in_process_path() {
        let env = vec!["PATH=/nonexistent:/bin".to_owned()];
        assert_eq!(resolve("sh", &env).ok(), Some(PathBuf::from("/bin/sh")));
        assert!(resolve("sh", &[]).is_err());
        assert!(resolve("no-such-program-here", &env)
            .err()
            .is_some_and(|e| e.contains("not found in $PATH")));
    }

    #[test]
    fn directory_is_not_executable() {
        assert!(resolve("/tmp", &[]).is_err());
    }
}
