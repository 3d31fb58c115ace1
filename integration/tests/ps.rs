//! `skiff ps`: the container's processes as a JSON array of host pids, or as
//! the host's `ps` table cut down to them.

use std::fs;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use skiff_integration::{pid_alive, wait_until, Env};

/// A running `sleep 1000` container with its own cgroup.
fn running(env: &Env, name: &str) -> Result<String> {
    let cg = env.cgroups_path(name);
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid(name);
    env.run_detached(&id)?;
    Ok(id)
}

fn ps_json(env: &Env, id: &str) -> Result<Vec<i32>> {
    let out = env.ok(["ps", "--format", "json", id])?;
    serde_json::from_str(&out).with_context(|| format!("ps --format json printed {out:?}"))
}

#[test]
fn json_lists_init_and_exec_processes() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = running(&env, "json")?;
    let init = env.pid(&id)?;
    ensure!(ps_json(&env, &id)? == [init], "only init expected");

    let pid_file = env.tmp.path().join("exec.pid");
    let pf = pid_file.to_string_lossy();
    env.ok_detached(["exec", "--detach", "--pid-file", &pf, &id, "sleep", "500"])?;
    let exec_pid: i32 = fs::read_to_string(&pid_file)?.trim().parse()?;
    let mut want = vec![init, exec_pid];
    want.sort_unstable();
    ensure!(ps_json(&env, &id)? == want, "want {want:?}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exec_pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    wait_until(10, "the exec'd process to end", || !pid_alive(exec_pid))?;
    wait_until(10, "ps to drop it", || {
        ps_json(&env, &id).is_ok_and(|p| p == [init])
    })?;
    Ok(())
}

#[test]
fn table_is_host_ps_cut_to_the_container() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = running(&env, "table")?;
    let init = env.pid(&id)?.to_string();

    let out = env.ok(["ps", &id])?;
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    ensure!(
        header.split_whitespace().nth(1) == Some("PID"),
        "ps -ef header: {out}"
    );
    let rows: Vec<&str> = lines.collect();
    ensure!(rows.len() == 1, "one process expected: {out}");
    ensure!(
        rows[0].split_whitespace().nth(1) == Some(init.as_str()),
        "{out}"
    );
    ensure!(rows[0].ends_with("sleep 1000"), "{out}");

    // PS_ARGS go to ps, even ones that look like skiff's flags.
    let out = env.ok(["ps", &id, "-o", "pid,comm"])?;
    let fields: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    ensure!(
        fields == [["PID", "COMMAND"], [init.as_str(), "sleep"]],
        "{out:?}"
    );
    let out = env.ok(["ps", "--format", "table", &id, "--", "-o", "comm,pid"])?;
    ensure!(
        out.lines().nth(1).is_some_and(|l| l.ends_with(&init)),
        "{out:?}"
    );

    let err = env.fails(["ps", &id, "-o", "comm"])?;
    ensure!(err.contains("PID"), "a table without PID column: {err}");
    let err = env.fails(["ps", "--format", "yaml", &id])?;
    ensure!(err.contains("yaml"), "{err}");
    Ok(())
}

#[test]
fn ps_of_stopped_or_missing_container_fails() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = running(&env, "stop")?;
    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    let err = env.fails(["ps", &id])?;
    ensure!(
        err.contains("cannot ps a container that has stopped"),
        "{err}"
    );
    let err = env.fails(["ps", "--format", "json", "nope"])?;
    ensure!(err.contains("does not exist"), "{err}");
    Ok(())
}
