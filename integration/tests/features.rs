//! `skiff features`: the runtime-spec features document, and that what it
//! claims about seccomp really works in a container.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use skiff_integration::Env;

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Fails unless `have` holds every one of `want`; `what` names an item.
fn has_all(have: &[&str], want: &[&str], what: &str) -> Result<()> {
    for w in want {
        ensure!(have.contains(w), "{what} {w} missing: {have:?}");
    }
    Ok(())
}

fn features(env: &Env) -> Result<Value> {
    serde_json::from_str(&env.ok(["features"])?).context("features is not JSON")
}

#[test]
fn features_document_is_complete() -> Result<()> {
    let env = Env::new(&["true"])?;
    let f = features(&env)?;
    ensure!(
        f["ociVersionMin"] == "1.0.0" && f["ociVersionMax"] == "1.3.0",
        "{f}"
    );
    has_all(
        &strings(&f["hooks"]),
        &[
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ],
        "hook",
    )?;
    has_all(
        &strings(&f["mountOptions"]),
        &[
            "ro", "rw", "bind", "rbind", "nosuid", "rprivate", "rro", "rnoexec",
        ],
        "mount option",
    )?;

    let linux = &f["linux"];
    has_all(
        &strings(&linux["namespaces"]),
        &["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
        "namespace",
    )?;
    let caps = strings(&linux["capabilities"]);
    ensure!(caps.len() == 41, "41 capabilities expected: {caps:?}");
    ensure!(caps.contains(&"CAP_SYS_ADMIN") && caps.contains(&"CAP_CHECKPOINT_RESTORE"));
    ensure!(
        linux["cgroup"]["v1"] == true && linux["cgroup"]["v2"] == true,
        "{linux}"
    );
    ensure!(linux["apparmor"]["enabled"].is_boolean(), "{linux}");
    ensure!(linux["selinux"]["enabled"].is_boolean(), "{linux}");

    let sc = &linux["seccomp"];
    ensure!(sc["enabled"] == true, "{sc}");
    has_all(
        &strings(&sc["actions"]),
        &[
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_NOTIFY",
        ],
        "action",
    )?;
    let ops = strings(&sc["operators"]);
    ensure!(
        ops.len() == 7 && ops.contains(&"SCMP_CMP_MASKED_EQ"),
        "{ops:?}"
    );
    let archs = strings(&sc["archs"]);
    #[cfg(target_arch = "x86_64")]
    has_all(
        &archs,
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "arch",
    )?;
    ensure!(!archs.is_empty());
    let known = strings(&sc["knownFlags"]);
    let supported = strings(&sc["supportedFlags"]);
    ensure!(supported.iter().all(|s| known.contains(s)), "{sc}");

    let version = f["annotations"]["io.github.seccomp.libseccomp.version"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "libseccomp version: {f}"
    );
    Ok(())
}

/// A container whose filter uses every flag reported as supported, on an
/// architecture from the list, must start, and the filter must act.
#[test]
fn reported_seccomp_support_works() -> Result<()> {
    let env = Env::new(&["sh", "-c", "mkdir /tmp/x 2>&1; echo done"])?;
    let _g = env.guard();
    let f = features(&env)?;
    let supported = f["linux"]["seccomp"]["supportedFlags"].clone();
    #[cfg(target_arch = "x86_64")]
    let arch = "SCMP_ARCH_X86_64";
    #[cfg(not(target_arch = "x86_64"))]
    let arch = "SCMP_ARCH_AARCH64";
    ensure!(strings(&f["linux"]["seccomp"]["archs"]).contains(&arch));
    env.edit_spec(|s| {
        s["root"]["readonly"] = json!(false);
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [arch],
            "flags": supported,
            "syscalls": [{
                "names": ["mkdir", "mkdirat"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1
            }]
        });
    })?;
    let stdout = env
        .run_code(&env.uid("feat"), 0)
        .with_context(|| format!("run with flags {supported}"))?;
    ensure!(
        stdout.contains("Operation not permitted"),
        "mkdir was not denied: {stdout}"
    );
    ensure!(stdout.contains("done"), "{stdout}");
    Ok(())
}
