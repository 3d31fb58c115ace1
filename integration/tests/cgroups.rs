//! Cgroups: the spec's resource limits as cgroupfs shows them, the freezer
//! behind pause and resume, and removal on delete.

use std::fs;
use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use skiff_integration::{cgroup_dir, cgroup_dirs_at, pid_alive, read_trimmed, Env};

/// A file of cgroup `rel` in `controller`'s directory.
fn read(controller: &str, rel: &str, file: &str) -> Result<String> {
    read_trimmed(&cgroup_dir(controller, rel).join(file))
}

#[test]
fn limits_from_the_spec_are_in_cgroupfs() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("limits");
    env.edit_spec(|s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "reservation": 32 << 20});
        s["linux"]["resources"]["pids"] = json!({"limit": 50});
        s["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
    })?;
    let id = env.uid("limits");
    env.create(&id)?;
    let pid = env.pid(&id)?.to_string();
    let v1 = skiff_integration::cgroup_v1("memory");
    for c in ["memory", "pids", "cpu", "cpuset", "freezer", "devices"] {
        if v1 && !skiff_integration::cgroup_v1(c) {
            continue;
        }
        let procs = read(c, &cg, "cgroup.procs")?;
        ensure!(
            procs.lines().any(|l| l == pid),
            "{c}: init {pid} not in {procs:?}"
        );
    }
    if v1 {
        ensure!(read("memory", &cg, "memory.limit_in_bytes")? == (64u64 << 20).to_string());
        ensure!(read("memory", &cg, "memory.soft_limit_in_bytes")? == (32u64 << 20).to_string());
        ensure!(read("pids", &cg, "pids.max")? == "50");
        ensure!(read("cpu", &cg, "cpu.shares")? == "512");
        ensure!(read("cpu", &cg, "cpu.cfs_quota_us")? == "50000");
        ensure!(read("cpu", &cg, "cpu.cfs_period_us")? == "100000");
        ensure!(read("cpuset", &cg, "cpuset.cpus")? == "0");
    } else {
        ensure!(read("memory", &cg, "memory.max")? == (64u64 << 20).to_string());
        ensure!(read("memory", &cg, "memory.low")? == (32u64 << 20).to_string());
        ensure!(read("pids", &cg, "pids.max")? == "50");
        ensure!(read("cpu", &cg, "cpu.max")? == "50000 100000");
        ensure!(read("cpuset", &cg, "cpuset.cpus")? == "0");
    }
    env.ok(["start", &id])?;
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    ensure!(own.contains(&cg), "{own}");

    env.ok(["delete", "--force", &id])?;
    ensure!(cgroup_dirs_at(&cg).is_empty(), "{:?}", cgroup_dirs_at(&cg));
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn pids_limit_is_enforced() -> Result<()> {
    let env = Env::new(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6; do sleep 30 & done; echo survived",
    ])?;
    let _g = env.guard();
    let cg = env.cgroups_path("pids");
    for (limit, ok) in [(50, true), (4, false)] {
        env.edit_spec(|s| {
            s["linux"]["cgroupsPath"] = json!(cg);
            s["linux"]["resources"]["pids"] = json!({ "limit": limit });
        })?;
        let id = env.uid(&format!("pids{limit}"));
        let out = env.run_fg(&id, &[], Duration::from_secs(30))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // sh (one task) cannot start six more under a limit of four.
        ensure!(
            out.status.success() == ok && stdout.contains("survived") == ok,
            "pids.max {limit}: {:?} {stdout:?} {stderr:?}",
            out.status
        );
        if !ok {
            ensure!(stderr.contains("fork"), "{stderr}");
        }
        env.assert_clean(&id, Some(&cg))?;
    }
    Ok(())
}

#[test]
fn pause_and_resume_use_the_freezer() -> Result<()> {
    let env = Env::new(&[
        "sh",
        "-c",
        "while :; do echo tick > /dev/shm/t; sleep 0.05; done",
    ])?;
    let _g = env.guard();
    let cg = env.cgroups_path("pause");
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid("pause");
    env.create(&id)?;
    let err = env.fails(["pause", &id])?;
    ensure!(
        err.contains("not running"),
        "pause of a created container: {err}"
    );
    env.ok(["start", &id])?;
    let err = env.fails(["resume", &id])?;
    ensure!(err.contains("not paused"), "{err}");

    let v1 = skiff_integration::cgroup_v1("freezer");
    let frozen = || -> Result<bool> {
        if v1 {
            Ok(read("freezer", &cg, "freezer.state")? == "FROZEN")
        } else {
            Ok(read("freezer", &cg, "cgroup.freeze")? == "1")
        }
    };
    ensure!(!frozen()?);
    env.ok(["pause", &id])?;
    ensure!(env.status(&id)? == "paused");
    ensure!(frozen()?, "freezer not frozen after pause");
    let err = env.fails(["pause", &id])?;
    ensure!(err.contains("not running"), "{err}");
    let err = env.fails(["delete", &id])?;
    ensure!(err.contains("not stopped"), "{err}");
    // A signal other than KILL is queued, not an error.
    env.ok(["kill", &id, "USR2"])?;
    ensure!(env.status(&id)? == "paused");

    env.ok(["resume", &id])?;
    ensure!(env.status(&id)? == "running");
    ensure!(!frozen()?, "freezer still frozen after resume");
    if v1 {
        ensure!(read("freezer", &cg, "freezer.state")? == "THAWED");
    }
    // sh as pid 1 ignores the USR2 (no handler): still running.
    ensure!(env.status(&id)? == "running");

    // SIGKILL reaches a paused container; delete --force does too.
    env.ok(["pause", &id])?;
    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    env.ok(["delete", &id])?;
    env.assert_clean(&id, Some(&cg))?;

    env.run_detached(&id)?;
    env.ok(["pause", &id])?;
    let pid = env.pid(&id)?;
    env.ok(["delete", "--force", &id])?;
    ensure!(!pid_alive(pid));
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn default_cgroup_is_removed_with_the_container() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("defcg");
    env.run_detached(&id)?;
    let pid = env.pid(&id)?;
    let dirs = skiff_integration::cgroup_dirs_named(&id);
    ensure!(!dirs.is_empty(), "no cgroup named after {id}");
    for d in &dirs {
        let procs = fs::read_to_string(d.join("cgroup.procs"))?;
        ensure!(
            procs.lines().any(|l| l == pid.to_string()),
            "{}",
            d.display()
        );
    }
    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    // Stopped, the cgroup is still there until delete.
    ensure!(dirs.iter().all(|d| d.exists()));
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)
}

/// linux.resources.memory.disableOOMKiller reaches memory.oom_control on
/// cgroup v1 (cgroup v2 has no such switch; runc ignores it there too).
#[test]
fn disable_oom_killer_on_cgroup_v1() -> Result<()> {
    if !skiff_integration::cgroup_v1("memory") {
        return Ok(());
    }
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("oomctl");
    env.edit_spec(|s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"]["memory"] = json!({"limit": 67108864, "disableOOMKiller": true});
    })?;
    let id = env.uid("oomctl");
    env.create(&id)?;
    let control = read("memory", &cg, "memory.oom_control")?;
    ensure!(control.contains("oom_kill_disable 1"), "{control}");
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, Some(&cg))
}
