//! Exec'd processes get the container's seccomp filter, as with runc.
//! libcontainer 0.7's tenant builder rebuilds the spec's `linux` section from
//! the namespaces and cgroup path alone, so without this an exec'd process
//! would run unfiltered. skiff loads the filter itself, in the executor, just
//! before execve.
//!
//! Loading a filter needs no_new_privs or CAP_SYS_ADMIN, and by then
//! libcontainer has dropped the process's capabilities. When the process has
//! neither, CAP_SYS_ADMIN is added to its effective and permitted sets only:
//! execve recomputes both from the bounding, inheritable and ambient sets, none
//! of which gain it, so the program runs with exactly the capabilities it
//! would have had otherwise.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{bail, Result};
use libcontainer::oci_spec::runtime::{Capability, LinuxSeccomp, Process};
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};

/// Makes `process` able to load `seccomp` at exec time (see the module docs).
pub fn prepare(process: &mut Process, seccomp: &LinuxSeccomp) -> Result<()> {
    if libcontainer::seccomp::is_notify(seccomp) {
        bail!(
            "the container's seccomp profile uses SCMP_ACT_NOTIFY, \
             which skiff exec does not support"
        );
    }
    if process.no_new_privileges() == Some(true) {
        return Ok(());
    }
    let mut caps = process
        .capabilities()
        .clone()
        .unwrap_or_else(super::no_capabilities);
    if caps
        .effective()
        .as_ref()
        .is_some_and(|e| e.contains(&Capability::SysAdmin))
    {
        return Ok(());
    }
    let mut effective = caps.effective().clone().unwrap_or_default();
    let mut permitted = caps.permitted().clone().unwrap_or_default();
    effective.insert(Capability::SysAdmin);
    permitted.insert(Capability::SysAdmin);
    caps.set_effective(Some(effective))
        .set_permitted(Some(permitted));
    process.set_capabilities(Some(caps));
    Ok(())
}

/// Loads the container's seccomp filter, then runs the wrapped executor.
#[derive(Clone)]
pub struct Filtered<E> {
    pub inner: E,
    pub seccomp: Option<LinuxSeccomp>,
}

impl<E: Executor + Clone + 'static> Executor for Filtered<E> {
    fn exec(&self, spec: &libcontainer::oci_spec::runtime::Spec) -> Result<(), ExecutorError> {
        if let Some(seccomp) = &self.seccomp {
            let notify = libcontainer::seccomp::initialize_seccomp(seccomp).map_err(|e| {
                ExecutorError::Other(format!("cannot load the container's seccomp filter: {e}"))
            })?;
            // `prepare` refuses notify profiles, so there is never a listener fd.
            if let Some(fd) = notify {
                // SAFETY: libseccomp just returned this fd to us and nothing else owns it.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        self.inner.exec(spec)
    }

    fn validate(
        &self,
        spec: &libcontainer::oci_spec::runtime::Spec,
    ) -> Result<(), ExecutorValidationError> {
        self.inner.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        self.inner.setup_envs(envs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Result<LinuxSeccomp> {
        Ok(serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }))?)
    }

    fn process(caps: serde_json::Value, nnp: Option<bool>) -> Result<Process> {
        let mut p: Process = serde_json::from_value(serde_json::json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["true"], "capabilities": caps
        }))?;
        p.set_no_new_privileges(nnp);
        Ok(p)
    }

    #[test]
    fn sys_admin_only_where_execve_drops_it() -> Result<()> {
        let mut p = process(
            serde_json::json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"]}),
            None,
        )?;
        prepare(&mut p, &filter()?)?;
        let caps = p.capabilities().clone().unwrap_or_default();
        let has = |s: &Option<_>| {
            s.as_ref()
                .is_some_and(|s: &std::collections::HashSet<Capability>| {
                    s.contains(&Capability::SysAdmin)
                })
        };
        assert!(has(caps.effective()) && has(caps.permitted()));
        assert!(!has(caps.bounding()) && !has(caps.inheritable()) && !has(caps.ambient()));
        Ok(())
    }

    #[test]
    fn no_new_privs_needs_nothing() -> Result<()> {
        let caps = serde_json::json!({"effective": ["CAP_KILL"]});
        let mut p = process(caps.clone(), Some(true))?;
        prepare(&mut p, &filter()?)?;
        assert_eq!(p.capabilities(), process(caps, Some(true))?.capabilities());
        Ok(())
    }

    #[test]
    fn notify_profiles_are_refused() -> Result<()> {
        let notify: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))?;
        assert!(prepare(&mut process(serde_json::json!({}), None)?, &notify).is_err());
        Ok(())
    }
}
