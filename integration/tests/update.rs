//! `skiff update`: new limits from runc's flags or an OCI linux.resources
//! file reach cgroupfs; fields not given keep their values; bad input fails
//! clearly and changes nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use skiff_integration::{cgroup_dir, cgroup_v1, read_trimmed, Env};

const MIB: u64 = 1 << 20;

/// A running `sleep` with its own cgroup path and a 256 MiB memory limit.
fn sleeper(env: &Env, name: &str) -> Result<(String, String)> {
    let cg = env.cgroups_path(name);
    env.edit_spec(|s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"]["memory"] = json!({"limit": 256 * MIB});
        s["linux"]["resources"]["pids"] = json!({"limit": 100});
    })?;
    let id = env.uid(name);
    env.run_detached(&id)?;
    Ok((id, cg))
}

/// A file of the container's cgroup: `v1` is (controller, file) on a v1 host,
/// `v2` the file in the unified directory otherwise.
fn cg_file(cg: &str, v1: (&str, &str), v2: &str) -> PathBuf {
    let file = if cgroup_v1(v1.0) { v1.1 } else { v2 };
    cgroup_dir(v1.0, cg).join(file)
}

fn memory_limit(cg: &str) -> Result<String> {
    read_trimmed(&cg_file(
        cg,
        ("memory", "memory.limit_in_bytes"),
        "memory.max",
    ))
}

fn pids_max(cg: &str) -> Result<String> {
    read_trimmed(&cg_file(cg, ("pids", "pids.max"), "pids.max"))
}

#[test]
fn flags_reach_cgroupfs_and_keep_other_limits() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let (id, cg) = sleeper(&env, "updflags")?;
    ensure!(memory_limit(&cg)? == (256 * MIB).to_string());

    env.ok(["update", "--memory", "64m", &id])?;
    ensure!(
        memory_limit(&cg)? == (64 * MIB).to_string(),
        "memory after update"
    );
    ensure!(pids_max(&cg)? == "100", "pids must not change");

    env.ok(["update", "--pids-limit", "42", &id])?;
    ensure!(pids_max(&cg)? == "42");
    ensure!(
        memory_limit(&cg)? == (64 * MIB).to_string(),
        "memory must not change"
    );

    env.ok([
        "update",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        &id,
    ])?;
    if cgroup_v1("cpu") {
        ensure!(read_trimmed(&cg_file(&cg, ("cpu", "cpu.cfs_quota_us"), ""))? == "50000");
        ensure!(read_trimmed(&cg_file(&cg, ("cpu", "cpu.cfs_period_us"), ""))? == "100000");
        env.ok(["update", "--cpu-share", "512", &id])?;
        ensure!(read_trimmed(&cg_file(&cg, ("cpu", "cpu.shares"), ""))? == "512");
    } else {
        ensure!(read_trimmed(&cg_file(&cg, ("cpu", ""), "cpu.max"))? == "50000 100000");
    }

    env.ok(["update", "--memory-reservation", "32m", &id])?;
    let soft = read_trimmed(&cg_file(
        &cg,
        ("memory", "memory.soft_limit_in_bytes"),
        "memory.low",
    ))?;
    ensure!(soft == (32 * MIB).to_string(), "reservation: {soft}");

    env.ok(["update", "--pids-limit", "-1", &id])?;
    ensure!(pids_max(&cg)? == "max");

    // Kernel memory is accepted, warned about and ignored.
    let out = env.skiff(["update", "--kernel-memory", "16m", &id])?;
    ensure!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("ignored"), "no warning: {err}");
    ensure!(memory_limit(&cg)? == (64 * MIB).to_string());
    Ok(())
}

#[test]
fn resources_file_and_stdin_reach_cgroupfs() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let (id, cg) = sleeper(&env, "updfile")?;

    let file = env.tmp.path().join("resources.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 32 * MIB}, "pids": {"limit": 17}}).to_string(),
    )?;
    env.ok(["update", "--resources", &file.display().to_string(), &id])?;
    ensure!(memory_limit(&cg)? == (32 * MIB).to_string());
    ensure!(pids_max(&cg)? == "17");

    // runc's "0 means unchanged": memory stays at 32 MiB.
    let mut child = env
        .cmd(["update", "-r", "-", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(br#"{"memory": {"limit": 0}, "pids": {"limit": 23}}"#)?;
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "update -r -: {out:?}");
    ensure!(pids_max(&cg)? == "23");
    ensure!(memory_limit(&cg)? == (32 * MIB).to_string());
    Ok(())
}

#[test]
fn bad_resources_files_fail_clearly_and_change_nothing() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let (id, cg) = sleeper(&env, "updbad")?;

    let missing = env.tmp.path().join("missing.json").display().to_string();
    let err = env.fails(["update", "-r", &missing, &id])?;
    ensure!(err.contains(&missing), "{err}");
    ensure!(err.contains("No such file"), "{err}");

    for (name, text, why) in [
        (
            "type.json",
            r#"{"memory": {"limit": "lots"}}"#,
            "invalid type",
        ),
        ("cut.json", r#"{"pids": {"limit": 5"#, "EOF"),
        ("array.json", "[1, 2]", "invalid type"),
    ] {
        let file = env.tmp.path().join(name).display().to_string();
        std::fs::write(&file, text)?;
        let err = env.fails(["update", "-r", &file, &id])?;
        ensure!(err.contains(&file), "{name}: {err}");
        ensure!(err.contains("invalid linux.resources"), "{name}: {err}");
        ensure!(err.contains(why), "{name}: {err}");
    }
    ensure!(pids_max(&cg)? == "100", "a failed update changed pids.max");
    ensure!(memory_limit(&cg)? == (256 * MIB).to_string());

    let err = env.fails(["update", "--memory", "12x", &id])?;
    ensure!(err.contains("invalid size"), "{err}");
    Ok(())
}

#[test]
fn update_refuses_rdt_stopped_and_missing_containers() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let id = env.uid("updstop");
    env.run_detached(&id)?;
    env.wait_status(&id, "stopped")?;
    let err = env.fails(["update", "--pids-limit", "5", &id])?;
    ensure!(err.contains("not running"), "{err}");
    let err = env.fails(["update", "--pids-limit", "5", "no-such-container"])?;
    ensure!(err.contains("does not exist"), "{err}");
    let err = env.fails(["update", "--l3-cache-schema", "L3:0=f", &id])?;
    ensure!(err.contains("not supported"), "{err}");
    Ok(())
}
