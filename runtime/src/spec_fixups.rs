//! Reading a bundle's config.json with errors that name the file and field,
//! and the spec rewrites libcontainer 0.7 needs to behave like runc.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{Capability, LinuxSeccomp, LinuxSeccompAction, Mount, Spec};

/// The newest runtime-spec version skiff accepts.
const MAX_OCI_VERSION: (u64, u64, u64) = (1, 3, 0);

pub struct LoadedSpec {
    pub spec: Spec,
    /// The spec needs rewriting before libcontainer sees it.
    pub needs_rewrite: bool,
    /// tmpfs destinations to fill from the image after create (see copyup).
    pub copy_up: Vec<PathBuf>,
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Loads and checks `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<LoadedSpec> {
    let path = bundle.join("config.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut spec: Spec = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid config", path.display()))?;

    let version = spec.version().clone();
    match parse_version(&version) {
        Some(v) if v.0 == 1 && v <= MAX_OCI_VERSION => {}
        _ => bail!(
            "{}: ociVersion {version:?} is not supported (1.0.0 up to 1.3.0)",
            path.display()
        ),
    }

    let root = spec
        .root()
        .as_ref()
        .with_context(|| format!("{}: root is missing", path.display()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        bail!(
            "{}: root.path {} does not exist or is not a directory",
            path.display(),
            rootfs.display()
        );
    }

    let process = spec
        .process()
        .as_ref()
        .with_context(|| format!("{}: process is missing", path.display()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("{}: process.args must not be empty", path.display());
    }
    if spec.linux().is_none() {
        bail!("{}: linux section is missing", path.display());
    }

    let mut needs_rewrite = fix_seccomp_timing(&mut spec);
    let copy_up = crate::copyup::take_from(&mut spec);
    needs_rewrite |= !copy_up.is_empty();
    needs_rewrite |= fix_bind_sources(&mut spec, bundle, &path)?;
    if needs_rewrite {
        let abs = fs::canonicalize(&rootfs)
            .with_context(|| format!("cannot resolve {}", rootfs.display()))?;
        if let Some(r) = spec.root_mut() {
            r.set_path(abs);
        }
    }
    Ok(LoadedSpec {
        spec,
        needs_rewrite,
        copy_up,
    })
}

/// Syscalls libcontainer's init makes after installing the filter early:
/// dropping capabilities, chdir to process.cwd, getcwd to check it.
const INIT_SYSCALLS_AFTER_EARLY_SECCOMP: [&str; 5] =
    ["capget", "capset", "prctl", "chdir", "getcwd"];

/// Whether the profile may refuse `name` (any rule for it that does not
/// allow, or a default that does not allow when no rule names it).
fn refuses(seccomp: &LinuxSeccomp, name: &str) -> bool {
    let allows = |a: LinuxSeccompAction| {
        matches!(
            a,
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let rules: Vec<_> = seccomp
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .collect();
    if rules.is_empty() {
        return !allows(seccomp.default_action());
    }
    rules
        .iter()
        .any(|r| !allows(r.action()) || r.args().as_ref().is_some_and(|a| !a.is_empty()))
}

/// libcontainer installs the seccomp filter either early, while the init is
/// still privileged (noNewPrivileges absent), or just before exec (present;
/// without no_new_privs the kernel then wants CAP_SYS_ADMIN). Early, the rest
/// of the init runs under the filter, and a profile refusing one of its
/// syscalls (say getcwd) kills the container where runc's would run. Then
/// skiff asks for the late way and keeps CAP_SYS_ADMIN in the init's
/// effective and permitted sets only: execve computes the new sets from the
/// bounding, inheritable and ambient ones, so the process never has it.
/// Otherwise an explicit `false` (libcontainer would install late, without
/// the capability) becomes absent: both mean "no no_new_privs".
/// Returns whether the spec changed.
fn fix_seccomp_timing(spec: &mut Spec) -> bool {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return false;
    };
    let Some(process) = spec.process_mut() else {
        return false;
    };
    if process.no_new_privileges() == Some(true) {
        return false;
    }
    let early_breaks = INIT_SYSCALLS_AFTER_EARLY_SECCOMP
        .iter()
        .any(|n| refuses(&seccomp, n));
    if !early_breaks {
        if process.no_new_privileges().is_none() {
            return false;
        }
        process.set_no_new_privileges(None);
        return true;
    }
    process.set_no_new_privileges(Some(false));
    if let Some(mut caps) = process.capabilities().clone() {
        if let Some(mut e) = caps.effective().clone() {
            e.insert(Capability::SysAdmin);
            caps.set_effective(Some(e));
        }
        if let Some(mut p) = caps.permitted().clone() {
            p.insert(Capability::SysAdmin);
            caps.set_permitted(Some(p));
        }
        process.set_capabilities(Some(caps));
    }
    true
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// Bind sources are host paths; runc reads a relative one from the bundle,
/// libcontainer from its working directory, so make them absolute. A source
/// that does not exist is named here: libcontainer would only report that
/// preparing the rootfs failed. Returns whether the spec changed.
fn fix_bind_sources(spec: &mut Spec, bundle: &Path, config: &Path) -> Result<bool> {
    let mut changed = false;
    let Some(mounts) = spec.mounts_mut().as_mut() else {
        return Ok(false);
    };
    for (i, m) in mounts.iter_mut().enumerate() {
        if !is_bind(m) {
            continue;
        }
        let Some(src) = m.source().clone() else {
            bail!(
                "{}: mounts[{i}] ({}): a bind mount needs a source",
                config.display(),
                m.destination().display()
            );
        };
        let abs = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(&src)
        };
        if let Err(e) = fs::metadata(&abs) {
            bail!(
                "{}: mounts[{i}]: cannot bind {} to {}: {e}",
                config.display(),
                abs.display(),
                m.destination().display()
            );
        }
        if abs != src {
            m.set_source(Some(abs));
            changed = true;
        }
    }
    Ok(changed)
}

/// Where a container's rewritten spec lives while it is being created.
pub fn private_bundle_dir(root: &Path, id: &str) -> PathBuf {
    root.join(":bundles").join(id)
}

/// Writes the rewritten spec into a private bundle dir libcontainer can load.
pub fn write_private_bundle(root: &Path, id: &str, spec: &Spec) -> Result<PathBuf> {
    let dir = private_bundle_dir(root, id);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = serde_json::to_vec(spec)?;
    fs::write(dir.join("config.json"), text)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("valid profile")
    }

    #[test]
    fn which_profiles_refuse_a_syscall() {
        let allow_all = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(!refuses(&allow_all, "getcwd"));
        let deny_getcwd = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(refuses(&deny_getcwd, "getcwd"));
        assert!(!refuses(&deny_getcwd, "chdir"));
        let allowlist = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getcwd", "chdir"], "action": "SCMP_ACT_ALLOW"}]}));
        assert!(!refuses(&allowlist, "getcwd"));
        assert!(refuses(&allowlist, "capset"));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.0.2-dev"), Some((1, 0, 2)));
        assert_eq!(parse_version("1.3.0"), Some((1, 3, 0)));
        assert_eq!(parse_version("1.1"), Some((1, 1, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(parse_version("1.4.0").is_some_and(|v| v > MAX_OCI_VERSION));
    }
}
