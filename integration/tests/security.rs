//! The process's identity and confinement: user and groups, rlimits,
//! capabilities, no_new_privs, seccomp, and the signal state it starts with.

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use skiff_integration::Env;

/// The value of `Key:` in /proc/self/status as the container's process sees it.
fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cap_mask(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, b| m | (1 << b)))
}

#[test]
fn user_groups_cwd_and_env() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(|s| {
        s["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20]});
        s["process"]["cwd"] = json!("/tmp");
        s["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
    })?;
    let out = env.sh(
        "user",
        "echo uid=$(id -u) gid=$(id -g); echo groups=$(id -G); pwd; echo foo=$FOO; \
         grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    )?;
    ensure!(out.contains("uid=1000 gid=1001"), "{out}");
    let groups = status_field(&out, "Groups");
    ensure!(groups == "10 20", "Groups: {groups:?}\n{out}");
    ensure!(status_field(&out, "Uid") == "1000 1000 1000 1000", "{out}");
    ensure!(status_field(&out, "Gid") == "1001 1001 1001 1001", "{out}");
    ensure!(out.lines().any(|l| l == "/tmp"), "cwd: {out}");
    ensure!(out.contains("foo=bar"), "{out}");
    Ok(())
}

#[test]
fn rlimits() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(|s| {
        s["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
            {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
    })?;
    let out = env.sh(
        "rlim",
        "ulimit -n; ulimit -Hn; grep -E 'Max (processes|core)' /proc/self/limits",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.first() == Some(&"512"), "{out}");
    ensure!(lines.get(1) == Some(&"1000"), "{out}");
    let procs = out
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap_or_default();
    ensure!(
        procs.split_whitespace().collect::<Vec<_>>()[2..4] == ["300", "400"],
        "{out}"
    );

    // An unknown rlimit type is an error.
    env.edit_spec(|s| {
        s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])
    })?;
    let id = env.uid("badrlim");
    let res = env.run_fg(&id, &[], std::time::Duration::from_secs(30))?;
    ensure!(!res.status.success());
    ensure!(String::from_utf8_lossy(&res.stderr).contains("RLIMIT_NOPE"));
    env.assert_clean(&id, None)
}

#[test]
fn capabilities_for_root_and_for_a_user() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let script = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status";
    // Root: after exec the effective set is the bounding set.
    env.edit_spec(|s| {
        let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
        s["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
    })?;
    let out = env.sh("caproot", script)?;
    let want = cap_mask(&[0, 5]);
    ensure!(status_field(&out, "CapBnd") == want, "{out}");
    ensure!(status_field(&out, "CapEff") == want, "{out}");
    ensure!(status_field(&out, "CapAmb") == cap_mask(&[]), "{out}");

    // Another user keeps only its ambient capabilities across exec.
    env.edit_spec(|s| {
        let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        s["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
            "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps});
    })?;
    let out = env.sh("capuser", script)?;
    let want = cap_mask(&[5, 10]);
    ensure!(status_field(&out, "CapEff") == want, "{out}");
    ensure!(status_field(&out, "CapPrm") == want, "{out}");
    ensure!(status_field(&out, "CapAmb") == want, "{out}");
    ensure!(
        status_field(&out, "CapBnd") == cap_mask(&[0, 5, 10]),
        "{out}"
    );

    // None at all.
    env.edit_spec(|s| s["process"]["capabilities"] = json!({}))?;
    let out = env.sh("capnone", script)?;
    ensure!(status_field(&out, "CapEff") == cap_mask(&[]), "{out}");
    Ok(())
}

fn seccomp(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

#[test]
fn seccomp_rules_return_their_errno() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let script = "mkdir /dev/shm/d 2>&1 && echo made; echo rc=$?";
    // The control: without a filter mkdir works.
    let out = env.sh("noseccomp", script)?;
    ensure!(out.contains("made"), "{out}");

    env.edit_spec(|s| {
        s["linux"]["seccomp"] = seccomp(json!([{"names": ["mkdir", "mkdirat"],
            "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    })?;
    let out = env.sh("eperm", script)?;
    ensure!(
        out.contains("Operation not permitted") && !out.contains("made"),
        "{out}"
    );

    // errnoRet is honoured, not just EPERM: ENOSPC.
    env.edit_spec(|s| {
        s["linux"]["seccomp"] = seccomp(json!([{"names": ["mkdir", "mkdirat"],
            "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]));
    })?;
    let out = env.sh("enospc", script)?;
    ensure!(out.contains("No space left on device"), "{out}");

    // A deny-by-default profile that allows what sh needs still runs.
    env.edit_spec(|s| {
        s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    })?;
    let id = env.uid("denyall");
    let res = env.run_fg(&id, &[], std::time::Duration::from_secs(30))?;
    // Everything is refused, so even exec fails: an error, not a hang.
    ensure!(!res.status.success());
    env.assert_clean(&id, None)
}

#[test]
fn seccomp_denying_getcwd_does_not_break_init() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let script = "echo running; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status";
    let caps = |out: &str| -> Vec<String> {
        ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
            .iter()
            .map(|k| status_field(out, k))
            .collect()
    };
    let deny_getcwd =
        seccomp(json!([{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    // noNewPrivileges true (the filter goes in last), absent, false; as root
    // and as another user with ambient capabilities.
    for user in [
        json!({"uid": 0, "gid": 0}),
        json!({"uid": 1000, "gid": 1000}),
    ] {
        for nnp in [Some(true), None, Some(false)] {
            let what = format!("user {user}, noNewPrivileges {nnp:?}");
            env.edit_spec(|s| {
                s["process"]["user"] = user.clone();
                let all = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
                s["process"]["capabilities"] = json!({"bounding": all, "effective": all,
                    "permitted": all, "inheritable": all, "ambient": all});
                match nnp {
                    Some(v) => s["process"]["noNewPrivileges"] = json!(v),
                    None => {
                        if let Some(p) = s["process"].as_object_mut() {
                            p.remove("noNewPrivileges");
                        }
                    }
                }
                if let Some(l) = s["linux"].as_object_mut() {
                    l.remove("seccomp");
                }
            })?;
            let plain = env.sh("plain", script)?;
            env.edit_spec(|s| s["linux"]["seccomp"] = deny_getcwd.clone())?;
            let out = env.sh("getcwd", script)?;
            ensure!(out.starts_with("running\n"), "{what}: {out}");
            // skiff may keep CAP_SYS_ADMIN in the init to install the filter
            // late; the process must have exactly the capabilities it has
            // without a filter.
            ensure!(caps(&out) == caps(&plain), "{what}: {out} vs {plain}");
            ensure!(
                status_field(&out, "CapEff") == cap_mask(&[5, 10]),
                "{what}: {out}"
            );
        }
    }
    // The filter is in force: getcwd fails in the container.
    let out = env.sh("getcwd-in", "cd /tmp && busybox pwd -P 2>&1; echo end")?;
    ensure!(
        out.contains("Operation not permitted") && out.contains("end"),
        "{out}"
    );
    Ok(())
}

#[test]
fn no_new_privileges_with_and_without_seccomp() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let script = "grep NoNewPrivs /proc/self/status; mkdir /dev/shm/d 2>&1; echo end";
    let filter = seccomp(json!([{"names": ["mkdir", "mkdirat"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    for (nnp, want) in [(Some(true), "1"), (Some(false), "0"), (None, "0")] {
        for with_seccomp in [false, true] {
            env.edit_spec(|s| {
                match nnp {
                    Some(v) => s["process"]["noNewPrivileges"] = json!(v),
                    None => {
                        if let Some(p) = s["process"].as_object_mut() {
                            p.remove("noNewPrivileges");
                        }
                    }
                }
                if with_seccomp {
                    s["linux"]["seccomp"] = filter.clone();
                } else if let Some(l) = s["linux"].as_object_mut() {
                    l.remove("seccomp");
                }
            })?;
            let out = env.sh("nnp", script)?;
            let what = format!("noNewPrivileges {nnp:?}, seccomp {with_seccomp}");
            ensure!(status_field(&out, "NoNewPrivs") == want, "{what}: {out}");
            ensure!(
                out.contains("Operation not permitted") == with_seccomp,
                "{what}: {out}"
            );
        }
    }
    Ok(())
}

#[test]
fn process_starts_with_default_signal_state() -> Result<()> {
    let env = Env::new(&["cat", "/proc/self/status"])?;
    let _g = env.guard();
    let id = env.uid("sigs");
    let out = env.run_code(&id, 0)?;
    ensure!(status_field(&out, "SigIgn") == cap_mask(&[]), "{out}");
    ensure!(status_field(&out, "SigBlk") == cap_mask(&[]), "{out}");
    env.assert_clean(&id, None)?;

    // Detached too.
    env.set_args(&["sleep", "1000"])?;
    let id = env.uid("sigsd");
    env.run_detached(&id)?;
    // `run --detach` returns once start is signalled (as runc's does), so
    // the init may not have exec'd yet: read the status once `sleep` runs.
    let mut st = String::new();
    skiff_integration::wait_until(10, "the init to exec sleep", || {
        st = env.read_in(&id, "/proc/1/status").unwrap_or_default();
        status_field(&st, "Name") == "sleep"
    })?;
    ensure!(status_field(&st, "SigIgn") == cap_mask(&[]), "{st}");
    ensure!(status_field(&st, "SigBlk") == cap_mask(&[]), "{st}");
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn executable_lookup_follows_the_process_path() -> Result<()> {
    let env = Env::new(&["/bin/sh", "-c", "echo abs; echo home=$HOME"])?;
    let _g = env.guard();
    // No PATH at all: an absolute args[0] still runs (libcontainer's own
    // executor refuses this).
    env.edit_spec(|s| s["process"]["env"] = json!([]))?;
    let id = env.uid("nopath");
    let out = env.run_code(&id, 0)?;
    ensure!(out.starts_with("abs\n"), "{out}");
    ensure!(
        out.contains("home=/root"),
        "HOME comes from /etc/passwd: {out}"
    );
    env.assert_clean(&id, None)?;

    // A bare name is looked up in the process's PATH, not skiff's.
    env.set_args(&["sh", "-c", "echo found"])?;
    let id = env.uid("bare");
    let res = env.run_fg(&id, &[], std::time::Duration::from_secs(30))?;
    ensure!(!res.status.success(), "sh found without a PATH");
    ensure!(String::from_utf8_lossy(&res.stderr).contains("PATH"));
    env.assert_clean(&id, None)?;
    env.edit_spec(|s| s["process"]["env"] = json!(["PATH=/nonexistent:/usr/bin:/bin"]))?;
    let out = env.run_code(&id, 0)?;
    ensure!(out == "found\n", "{out}");
    env.assert_clean(&id, None)
}
