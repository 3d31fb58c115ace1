//! The core lifecycle: create → start → kill → delete with the `state` JSON at
//! each step, `run` in the foreground and detached, `kill` and `list`.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use skiff_integration::{output_within, pid_alive, wait_until, Env};

const SLEEP: &[&str] = &["sleep", "1000"];

#[test]
fn state_follows_created_running_stopped() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let cg = env.cgroups_path("life");
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid("life");
    env.create(&id)?;

    let s = env.state(&id)?;
    let bundle = std::fs::canonicalize(&env.bundle)?;
    ensure!(
        s["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{s}"
    );
    ensure!(s["id"] == json!(id), "{s}");
    ensure!(s["status"] == "created", "{s}");
    ensure!(s["bundle"] == json!(bundle), "{s}");
    ensure!(s["rootfs"] == json!(bundle.join("rootfs")), "{s}");
    ensure!(s["owner"] == "root", "{s}");
    let created = s["created"].as_str().unwrap_or_default();
    ensure!(
        created.len() >= 20 && created.as_bytes()[10] == b'T' && created.ends_with('Z'),
        "created is not RFC 3339: {s}"
    );
    ensure!(
        s.get("annotations").is_none(),
        "no annotations expected: {s}"
    );
    let pid = env.pid(&id)?;
    ensure!(
        pid_alive(pid),
        "init {pid} of a created container is not alive"
    );

    env.ok(["start", &id])?;
    let s = env.state(&id)?;
    ensure!(s["status"] == "running", "{s}");
    ensure!(s["pid"] == json!(pid), "pid changed on start: {s}");
    ensure!(s["created"] == json!(created), "{s}");

    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    let s = env.state(&id)?;
    ensure!(s["pid"] == json!(0), "a stopped container's pid is 0: {s}");
    // Stopped, not yet deleted: everything is still there.
    ensure!(env.root.join(&id).is_dir());
    ensure!(!skiff_integration::cgroup_dirs_at(&cg).is_empty());

    env.ok(["delete", &id])?;
    let err = env.fails(["state", &id])?;
    ensure!(err.contains("does not exist"), "{err}");
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn start_twice_and_start_stopped_fail() -> Result<()> {
    let env = Env::new(&["sh", "-c", "exit 0"])?;
    let _g = env.guard();
    let id = env.uid("twice");
    env.create(&id)?;
    env.ok(["start", &id])?;
    env.wait_status(&id, "stopped")?;
    let err = env.fails(["start", &id])?;
    ensure!(err.contains("stopped"), "{err}");
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn run_returns_the_exit_code() -> Result<()> {
    let env = Env::new(&["sh", "-c", "echo hello; exit 3"])?;
    let _g = env.guard();
    let id = env.uid("code");
    let out = env.run_code(&id, 3)?;
    ensure!(out == "hello\n", "stdout {out:?}");
    env.assert_clean(&id, None)?;

    env.set_args(&["true"])?;
    env.run_code(&id, 0)?;
    env.set_args(&["false"])?;
    env.run_code(&id, 1)?;
    env.assert_clean(&id, None)
}

#[test]
fn run_with_terminal_relays_a_pty() -> Result<()> {
    // runc's `run` of a spec with process.terminal and no --console-socket
    // gives the process a pty and copies it to its own stdio.
    let env = Env::new(&["sh", "-c", "tty; test -t 0 && echo stdin-is-tty; exit 6"])?;
    let _g = env.guard();
    env.edit_spec(|s| s["process"]["terminal"] = json!(true))?;
    let id = env.uid("tty");
    let out = env.run_code(&id, 6)?;
    ensure!(out.contains("/dev/pts/0"), "stdout {out:?}");
    ensure!(out.contains("stdin-is-tty"), "stdout {out:?}");
    env.assert_clean(&id, None)
}

/// `skiff run` of the bundle in the foreground, `skiff kill ID SIGNAL` once it runs:
/// the exit code `run` returned.
fn run_then_kill(env: &Env, id: &str, signal: &str) -> Result<Option<i32>> {
    let mut cmd = env.cmd(["run", "--bundle"]);
    cmd.arg(&env.bundle).arg(id);
    let waiter = std::thread::spawn(move || output_within(cmd, Duration::from_secs(30)));
    wait_until(10, "container running", || {
        env.status(id).is_ok_and(|s| s == "running")
    })?;
    env.ok(["kill", id, signal])?;
    let out = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("waiter panicked"))??;
    Ok(out.status.code())
}

#[test]
fn run_returns_128_plus_signal() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = env.uid("sig");
    env.track(&id);
    let code = run_then_kill(&env, &id, "KILL")?;
    ensure!(code == Some(137), "run exited {code:?}");
    env.assert_clean(&id, None)?;

    // Without a pid namespace the process is no init, so SIGTERM kills it.
    env.edit_spec(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut();
        if let Some(ns) = ns {
            ns.retain(|n| n["type"] != "pid");
        }
    })?;
    let code = run_then_kill(&env, &id, "TERM")?;
    ensure!(code == Some(143), "run exited {code:?}");
    env.assert_clean(&id, None)
}

#[test]
fn quick_foreground_runs_never_hang() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    for i in 0..50 {
        let id = env.uid(&format!("q{i}"));
        let code = i % 3;
        env.set_args(&["sh", "-c", &format!("exit {code}")])?;
        let out = env.run_fg(&id, &[], Duration::from_secs(10))?;
        ensure!(
            out.status.code() == Some(code),
            "run {i}: exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(!env.root.join(&id).exists(), "run {i} left its state");
    }
    let left = std::fs::read_dir(env.root.join(":locks"))?.count();
    ensure!(left == 0, "{left} lock files left");
    Ok(())
}

#[test]
fn run_detach_returns_while_running() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = env.uid("det");
    let t = std::time::Instant::now();
    env.run_detached(&id)?;
    ensure!(t.elapsed() < Duration::from_secs(10));
    ensure!(env.status(&id)? == "running");
    let pid = env.pid(&id)?;
    ensure!(pid_alive(pid));
    env.ok(["delete", "--force", &id])?;
    wait_until(5, "init gone", || !pid_alive(pid))?;
    env.assert_clean(&id, None)
}

#[test]
fn run_keep_leaves_a_stopped_container() -> Result<()> {
    let env = Env::new(&["sh", "-c", "exit 7"])?;
    let _g = env.guard();
    let id = env.uid("keep");
    let out = env.run_fg(&id, &["--keep"], Duration::from_secs(30))?;
    ensure!(out.status.code() == Some(7), "{:?}", out.status);
    ensure!(env.status(&id)? == "stopped");
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn kill_non_terminating_signals_keep_it_running() -> Result<()> {
    // The rootfs is read-only; the trap log goes to /dev/shm (a tmpfs).
    let script = "for s in USR1 CONT WINCH HUP; do trap \"echo $s >> /dev/shm/log\" $s; done; \
                  echo ready > /dev/shm/log; while :; do sleep 0.05; done";
    let env = Env::new(&["sh", "-c", script])?;
    let _g = env.guard();
    let id = env.uid("trap");
    env.run_detached(&id)?;
    wait_until(10, "trap installed", || {
        env.read_in(&id, "/dev/shm/log")
            .is_ok_and(|l| l.starts_with("ready"))
    })?;
    // By name, by SIG name, by number (SIGCONT = 18, SIGHUP = 1).
    for (sig, name) in [
        ("USR1", "USR1"),
        ("18", "CONT"),
        ("SIGWINCH", "WINCH"),
        ("1", "HUP"),
    ] {
        env.ok(["kill", &id, sig])?;
        wait_until(10, &format!("trap for {name}"), || {
            env.read_in(&id, "/dev/shm/log")
                .is_ok_and(|l| l.lines().any(|x| x == name))
        })?;
        let st = env.status(&id)?;
        ensure!(st == "running", "after SIG{name} the container is {st}");
    }
    env.ok(["kill", &id, "9"])?;
    env.wait_status(&id, "stopped")?;
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn kill_all_reaches_every_process() -> Result<()> {
    // init (sh) ignores SIGTERM; its children do not, and it exits once they die.
    let env = Env::new(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"])?;
    let _g = env.guard();
    let id = env.uid("all");
    env.run_detached(&id)?;
    let cg_pids = || -> usize {
        skiff_integration::cgroup_dirs_named(&id)
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|p| p.lines().count())
            .unwrap_or(0)
    };
    wait_until(10, "three processes", || cg_pids() == 3)?;
    env.ok(["kill", &id, "TERM"])?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(env.status(&id)? == "running", "init must ignore SIGTERM");
    ensure!(cg_pids() == 3);
    env.ok(["kill", "--all", &id, "TERM"])?;
    env.wait_status(&id, "stopped")?;
    // --all on a stopped container is not an error (runc allows it).
    env.ok(["kill", "--all", &id, "KILL"])?;
    let err = env.fails(["kill", &id, "KILL"])?;
    ensure!(err.contains("not running"), "{err}");
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn delete_of_created_kills_and_deletes_like_runc() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let cg = env.cgroups_path("dc");
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid("dc");
    env.create(&id)?;
    let pid = env.pid(&id)?;
    ensure!(env.status(&id)? == "created");
    ensure!(pid_alive(pid));
    // runc, crun and youki kill a created container's init and delete it
    // without --force; containerd's runc shim and CRI depend on it.
    env.ok(["delete", &id])?;
    wait_until(5, "init gone", || !pid_alive(pid))?;
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn delete_force_kills_a_running_container() -> Result<()> {
    let env = Env::new(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("df");
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid("df");
    env.run_detached(&id)?;
    let pid = env.pid(&id)?;
    let err = env.fails(["delete", &id])?;
    ensure!(err.contains("not stopped"), "{err}");
    ensure!(env.status(&id)? == "running");
    ensure!(env.root.join(":locks").join(&id).exists());
    let procs = skiff_integration::cgroup_dirs_at(&cg)
        .first()
        .map(|d| std::fs::read_to_string(d.join("cgroup.procs")))
        .transpose()?
        .unwrap_or_default();
    let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
    ensure!(pids.len() == 3, "cgroup.procs {procs:?}");

    env.ok(["delete", "--force", &id])?;
    for p in pids {
        ensure!(
            !pid_alive(p),
            "pid {p} (init {pid}) survived delete --force"
        );
    }
    // delete --force of a container that is gone is not an error.
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn list_table_json_and_quiet() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    ensure!(env.ok(["list", "--format", "json"])?.trim() == "null");
    let empty = env.ok(["list"])?;
    ensure!(
        empty.lines().count() == 1 && empty.starts_with("ID"),
        "{empty:?}"
    );
    ensure!(env.ok(["list", "-q"])?.is_empty());

    let a = env.uid("a");
    let b = env.uid("b");
    env.create(&a)?;
    env.run_detached(&b)?;
    let bundle = std::fs::canonicalize(&env.bundle)?;

    let table = env.ok(["list"])?;
    let lines: Vec<&str> = table.lines().collect();
    ensure!(lines.len() == 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    ensure!(
        header == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    for (line, id, status) in [(lines[1], &a, "created"), (lines[2], &b, "running")] {
        let cells: Vec<&str> = line.split_whitespace().collect();
        ensure!(cells.len() == 6, "{line}");
        ensure!(cells[0] == id.as_str() && cells[2] == status, "{line}");
        ensure!(cells[1] == env.pid(id)?.to_string(), "{line}");
        ensure!(cells[3] == bundle.to_string_lossy(), "{line}");
        ensure!(cells[5] == "root", "{line}");
    }

    let v: serde_json::Value = serde_json::from_str(&env.ok(["list", "-f", "json"])?)?;
    let arr = v.as_array().map(Vec::as_slice).unwrap_or_default();
    ensure!(arr.len() == 2, "{v}");
    ensure!(
        arr[0]["id"] == json!(a) && arr[0]["status"] == "created",
        "{v}"
    );
    ensure!(
        arr[1]["id"] == json!(b) && arr[1]["status"] == "running",
        "{v}"
    );
    ensure!(arr[1]["bundle"] == json!(bundle), "{v}");

    let quiet = env.ok(["list", "--quiet"])?;
    ensure!(quiet == format!("{a}\n{b}\n"), "{quiet:?}");

    // Lock files and private dirs in the root are not containers.
    env.ok(["kill", &b, "KILL"])?;
    env.wait_status(&b, "stopped")?;
    ensure!(env.ok(["list", "-q"])? == format!("{a}\n{b}\n"));
    env.ok(["delete", "--force", &a])?;
    env.ok(["delete", &b])?;
    ensure!(env.ok(["list", "-q"])?.is_empty());
    env.assert_clean(&a, None)?;
    env.assert_clean(&b, None)
}

#[test]
fn oci_versions_and_options_after_the_id() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0"] {
        env.edit_spec(|s| s["ociVersion"] = json!(v))?;
        let id = env.uid("v");
        env.track(&id);
        // runc's CLI (urfave) takes flags after the positional id too.
        let mut c = env.cmd(["create", &id, "--bundle"]);
        c.arg(&env.bundle);
        let out = output_within(c, Duration::from_secs(30))?;
        ensure!(
            out.status.success(),
            "ociVersion {v}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(env.status(&id)? == "created");
        env.ok(["delete", "--force", &id])?;
        env.assert_clean(&id, None)?;
    }
    let id = env.uid("r");
    env.track(&id);
    let out = env.skiff(["run", &id, "-b", &env.bundle.to_string_lossy()])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_clean(&id, None)
}

#[test]
fn kill_a_created_container_and_pid_file() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = env.uid("kc");
    env.track(&id);
    let pid_file = env.tmp.path().join("pid");
    let mut c = env.cmd(["create", "--pid-file"]);
    c.arg(&pid_file).arg("--bundle").arg(&env.bundle).arg(&id);
    let out = output_within(c, Duration::from_secs(30))?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = env.pid(&id)?;
    ensure!(std::fs::read_to_string(&pid_file)?.trim() == pid.to_string());
    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    let err = env.fails(["start", &id])?;
    ensure!(err.contains("stopped"), "{err}");
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)
}
