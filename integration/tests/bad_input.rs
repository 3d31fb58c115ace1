//! Bad input: every failure is a clear error, a non-zero exit, and leaves
//! nothing behind (no state dir, no lock file, no cgroup, no mount).

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use skiff_integration::{output_within, Env};

/// `create` that must fail; returns stderr after checking nothing is left.
fn create_fails(env: &Env, id: &str, cgroups_path: Option<&str>) -> Result<String> {
    env.track(id);
    let mut c = env.cmd(["create", "--bundle"]);
    c.arg(&env.bundle).arg(id);
    let out = output_within(c, Duration::from_secs(30))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(!out.status.success(), "create {id} succeeded");
    ensure!(
        !err.trim().is_empty(),
        "create {id} failed without a message"
    );
    env.assert_clean(id, cgroups_path)?;
    Ok(err)
}

/// Like `create_fails` for a bundle whose spec gets a unique cgroupsPath.
fn create_fails_cg(env: &Env, name: &str) -> Result<String> {
    let cg = env.cgroups_path(name);
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    create_fails(env, &env.uid(name), Some(&cg))
}

#[test]
fn malformed_config_names_file_and_position() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let config = env.bundle.join("config.json");
    std::fs::write(
        &config,
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n",
    )?;
    let err = create_fails(&env, &env.uid("syntax"), None)?;
    ensure!(err.contains(&*config.to_string_lossy()), "{err}");
    ensure!(err.contains("line 3"), "{err}");

    // A field of the wrong type.
    let mut spec = skiff_integration::default_spec(&["true"]);
    spec["hostname"] = json!(5);
    env.write_spec(&spec)?;
    let err = create_fails(&env, &env.uid("type"), None)?;
    ensure!(err.contains("config.json"), "{err}");
    ensure!(err.contains("line") && err.contains("column"), "{err}");
    ensure!(err.contains("invalid type"), "{err}");

    // Not even JSON, and an empty file.
    for text in ["not json", ""] {
        std::fs::write(&config, text)?;
        let err = create_fails(&env, &env.uid("garbage"), None)?;
        ensure!(err.contains("config.json"), "{err}");
    }
    // `run` says the same.
    let id = env.uid("run");
    let out = env.run_fg(&id, &[], Duration::from_secs(30))?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
    env.assert_clean(&id, None)
}

#[test]
fn missing_bundle_rootfs_process_or_args() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let id = env.uid("nobundle");
    let out = env.skiff(["create", "--bundle", "/nonexistent/bundle", &id])?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("/nonexistent/bundle"), "{err}");
    env.assert_clean(&id, None)?;

    env.edit_spec(|s| s["root"]["path"] = json!("no-such-rootfs"))?;
    let err = create_fails(&env, &env.uid("norootfs"), None)?;
    ensure!(err.contains("no-such-rootfs"), "{err}");

    env.write_spec(&skiff_integration::default_spec(&[]))?;
    let err = create_fails(&env, &env.uid("noargs"), None)?;
    ensure!(err.contains("args"), "{err}");

    env.edit_spec(|s| {
        if let Some(o) = s.as_object_mut() {
            o.remove("process");
        }
    })?;
    let err = create_fails(&env, &env.uid("noproc"), None)?;
    ensure!(err.contains("process"), "{err}");
    Ok(())
}

#[test]
fn unsupported_oci_version() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    for v in ["1.4.0", "2.0.0", "0.9.0", "banana"] {
        env.edit_spec(|s| s["ociVersion"] = json!(v))?;
        let err = create_fails(&env, &env.uid("ver"), None)?;
        ensure!(err.contains("ociVersion") && err.contains(v), "{v}: {err}");
    }
    Ok(())
}

#[test]
fn missing_executable_fails_create_and_cleans_up() -> Result<()> {
    let env = Env::new(&["/no/such/program"])?;
    let _g = env.guard();
    let err = create_fails_cg(&env, "noexe")?;
    ensure!(err.contains("/no/such/program"), "{err}");

    env.set_args(&["no-such-program"])?;
    let err = create_fails_cg(&env, "nopath")?;
    ensure!(err.contains("no-such-program"), "{err}");

    // A directory is not a program.
    env.set_args(&["/etc"])?;
    create_fails_cg(&env, "dir")?;

    // `run` cleans up as well.
    env.set_args(&["/no/such/program"])?;
    let cg = env.cgroups_path("runnoexe");
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid("runnoexe");
    let out = env.run_fg(&id, &[], Duration::from_secs(30))?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("/no/such/program"));
    env.assert_clean(&id, Some(&cg))?;
    let out = env.run_fg(&id, &["--detach"], Duration::from_secs(30))?;
    ensure!(!out.status.success());
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn failure_inside_container_setup_cleans_up() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    // The bind source does not exist: the container's init fails after the
    // cgroup and state dir were made.
    env.edit_spec(|s| {
        if let Some(m) = s["mounts"].as_array_mut() {
            m.push(json!({"destination": "/data", "type": "bind",
                          "source": "/no/such/source", "options": ["rbind"]}));
        }
    })?;
    let err = create_fails_cg(&env, "mnt")?;
    ensure!(
        err.contains("/no/such/source") || err.contains("mount"),
        "{err}"
    );

    // An unusable cgroup value.
    env.write_spec(&skiff_integration::default_spec(&["true"]))?;
    env.edit_spec(|s| s["linux"]["resources"]["cpu"] = json!({"shares": 1, "cpus": "999999"}))?;
    create_fails_cg(&env, "cpuset")?;
    Ok(())
}

#[test]
fn unknown_id_is_an_error_and_leaves_nothing() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let id = env.uid("ghost");
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id],
        vec!["kill", &id, "KILL"],
        vec!["kill", "--all", &id, "KILL"],
        vec!["delete", &id],
        vec!["pause", &id],
        vec!["resume", &id],
    ] {
        let err = env.fails(&args)?;
        ensure!(err.contains("does not exist"), "{args:?}: {err}");
        env.assert_clean(&id, None)?;
    }
    // runc: delete --force of an unknown id succeeds.
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, None)?;
    ensure!(env.ok(["list", "-q"])?.is_empty());
    Ok(())
}

#[test]
fn invalid_ids_are_refused() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    for bad in ["../escape", "a/b", "..", "with space", "a:b", ""] {
        let out = env.skiff(["create", "--bundle", &env.bundle.to_string_lossy(), bad])?;
        ensure!(!out.status.success(), "id {bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(err.contains("id"), "{bad:?}: {err}");
        let err = env.fails(["state", bad])?;
        ensure!(!err.is_empty());
    }
    ensure!(!env.tmp.path().join("escape").exists());
    let entries: Vec<_> = match std::fs::read_dir(&env.root) {
        Ok(d) => d.flatten().map(|e| e.file_name()).collect(),
        Err(_) => Vec::new(),
    };
    ensure!(
        entries.iter().all(|n| n == ":locks"),
        "root holds {entries:?}"
    );
    Ok(())
}

#[test]
fn duplicate_id_keeps_the_first_container() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("dup");
    env.create(&id)?;
    let pid = env.pid(&id)?;
    let mut c = env.cmd(["create", "--bundle"]);
    c.arg(&env.bundle).arg(&id);
    let out = output_within(c, Duration::from_secs(30))?;
    ensure!(!out.status.success(), "second create succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("exists"), "{err}");
    ensure!(env.status(&id)? == "created");
    ensure!(env.pid(&id)? == pid);
    let out = env.run_fg(&id, &[], Duration::from_secs(30))?;
    ensure!(!out.status.success(), "run with a taken id succeeded");
    ensure!(env.status(&id)? == "created");
    env.ok(["start", &id])?;
    ensure!(env.status(&id)? == "running");
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn bad_signals_are_refused() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("badsig");
    env.run_detached(&id)?;
    for sig in ["NOPE", "SIGNOPE", "999", "0x9", ""] {
        let err = env.fails(["kill", &id, sig])?;
        ensure!(err.contains("signal"), "{sig:?}: {err}");
        ensure!(env.status(&id)? == "running", "after kill {sig:?}");
    }
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn unknown_capability_is_a_clear_error() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(|s| {
        s["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_NOPE"]);
        s["process"]["capabilities"]["effective"] = json!(["CAP_KILL", "CAP_NOPE"]);
    })?;
    let err = create_fails_cg(&env, "cap")?;
    ensure!(err.contains("CAP_NOPE"), "{err}");
    ensure!(err.contains("config.json"), "{err}");
    Ok(())
}

#[test]
fn corrupt_state_is_an_error_and_force_delete_cleans_up() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("corrupt");
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid("corrupt");
    env.run_detached(&id)?;
    let pid = env.pid(&id)?;
    std::fs::write(env.root.join(&id).join("state.json"), "{ broken")?;
    let err = env.fails(["state", &id])?;
    ensure!(err.contains(&id), "{err}");
    env.fails(["delete", &id])?;
    env.ok(["delete", "--force", &id])?;
    ensure!(!skiff_integration::pid_alive(pid), "init survived");
    env.assert_clean(&id, Some(&cg))
}

/// A step the host refuses names the step, the file or resource and the
/// errno (runc: `failed to update /proc/self/oom_score_adj: Permission
/// denied`, `error setting rlimit type 7: operation not permitted`).
#[test]
fn refused_steps_name_their_cause() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();

    // Lowering oom_score_adj below the caller's needs CAP_SYS_RESOURCE,
    // which these hosts do not give; where it is given, the value is taken.
    env.edit_spec(|s| s["process"]["oomScoreAdj"] = json!(-999))?;
    let id = env.uid("oom");
    env.track(&id);
    let mut c = env.cmd(["create", "--bundle"]);
    c.arg(&env.bundle).arg(&id);
    let out = output_within(c, Duration::from_secs(30))?;
    if out.status.success() {
        let _ = env.skiff(["delete", "--force", &id]);
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(err.contains("/proc/self/oom_score_adj"), "{err}");
        ensure!(err.contains("-999"), "{err}");
        ensure!(err.contains("Permission denied"), "{err}");
        env.assert_clean(&id, None)?;
    }

    // A hard limit above the caller's own, without CAP_SYS_RESOURCE.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    if hard == nix::sys::resource::RLIM_INFINITY {
        return Ok(());
    }
    // Above the caller's hard limit, and within the kernel's nr_open.
    let over = hard + 1;
    env.edit_spec(|s| {
        s["process"]["oomScoreAdj"] = json!(null);
        s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": over, "soft": 1024}]);
    })?;
    let err = create_fails_cg(&env, "rlimit")?;
    ensure!(err.contains("rlimit type 7"), "{err}");
    ensure!(err.contains(&over.to_string()), "{err}");
    ensure!(
        err.contains("EPERM") || err.contains("not permitted"),
        "{err}"
    );
    Ok(())
}

/// Failures inside the container's setup name what they acted on.
#[test]
fn setup_failures_name_what_failed() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let cases: [(&str, serde_json::Value, &[&str]); 4] = [
        (
            "cwd",
            json!({"process": {"cwd": "/etc/passwd"}}),
            &["working directory /etc/passwd", "Not a directory"],
        ),
        (
            "fstype",
            json!({"mounts": [{"destination": "/x", "type": "nosuchfs", "source": "foo"}]}),
            &["(nosuchfs) to rootfs at /x", "ENODEV"],
        ),
        (
            "hook",
            json!({"hooks": {"createRuntime": [{"path": "/no/such/hook"}]}}),
            &["hook #0 (/no/such/hook)", "No such file"],
        ),
        (
            "groups",
            json!({"process": {"user": {"uid": 0, "gid": 0, "additionalGids": [4294967295u32]}}}),
            &["supplementary groups [4294967295]", "EINVAL"],
        ),
    ];
    for (name, change, want) in cases {
        let mut spec = skiff_integration::default_spec(&["true"]);
        merge(&mut spec, &change);
        env.write_spec(&spec)?;
        let err = create_fails_cg(&env, name)?;
        for w in want {
            ensure!(err.contains(w), "{name}: {w:?} not in {err}");
        }
    }
    Ok(())
}

/// Merges `change` into `spec`: objects key by key, arrays appended.
fn merge(spec: &mut serde_json::Value, change: &serde_json::Value) {
    match (spec, change) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(b)) => a.extend(b.iter().cloned()),
        (slot, v) => *slot = v.clone(),
    }
}
