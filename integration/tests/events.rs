//! `skiff events`: runc's JSON envelope, statistics read from the container's
//! cgroup, OOM notices, and the end of the stream when the container stops.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use skiff_integration::Env;

const MIB: u64 = 1 << 20;

#[test]
fn stats_event_has_runc_shape_and_real_values() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("events");
    env.edit_spec(|s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"]["memory"] = json!({"limit": 256 * MIB});
        s["linux"]["resources"]["pids"] = json!({"limit": 64});
    })?;
    let id = env.uid("events");
    env.run_detached(&id)?;

    let out = env.ok(["events", "--stats", &id])?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() == 1, "one event expected: {out}");
    let ev: Value = serde_json::from_str(lines[0])?;
    ensure!(ev["type"] == "stats" && ev["id"] == json!(id), "{ev}");
    let d = &ev["data"];

    let mem = &d["memory"]["usage"];
    ensure!(
        mem["usage"].as_u64().is_some_and(|u| u > 0),
        "memory usage: {d}"
    );
    ensure!(mem["limit"] == json!(256 * MIB), "memory limit: {d}");
    ensure!(
        mem.get("failcnt").is_some(),
        "failcnt is always present: {d}"
    );
    for part in ["swap", "kernel", "kernelTCP"] {
        ensure!(d["memory"][part].is_object(), "memory.{part}: {d}");
    }
    ensure!(
        d["memory"]["raw"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "raw: {d}"
    );

    ensure!(
        d["pids"]["current"].as_u64().is_some_and(|n| n >= 1),
        "pids: {d}"
    );
    ensure!(d["pids"]["limit"] == json!(64), "pids limit: {d}");

    let cpu = &d["cpu"]["usage"];
    ensure!(
        cpu["total"].as_u64().is_some_and(|t| t > 0),
        "cpu total: {d}"
    );
    ensure!(
        cpu["user"].is_u64() && cpu["kernel"].is_u64(),
        "cpu user/kernel: {d}"
    );
    ensure!(
        cpu["percpu"].as_array().is_some_and(|p| !p.is_empty()),
        "percpu: {d}"
    );
    ensure!(d["cpu"]["throttling"].is_object(), "throttling: {d}");
    ensure!(
        d["cpuset"]["cpus"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "cpuset.cpus: {d}"
    );

    ensure!(d["blkio"].is_object() && d["hugetlb"].is_object(), "{d}");
    ensure!(d["intel_rdt"] == json!({}), "{d}");
    ensure!(d["network_interfaces"].is_null(), "{d}");
    Ok(())
}

#[test]
fn events_refuse_stopped_and_missing_containers() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let id = env.uid("evstop");
    env.run_detached(&id)?;
    env.wait_status(&id, "stopped")?;
    let err = env.fails(["events", "--stats", &id])?;
    ensure!(err.contains("is not running"), "{err}");
    let err = env.fails(["events", "--stats", "no-such-container"])?;
    ensure!(err.contains("does not exist"), "{err}");
    for (bad, why) in [
        ("0s", "greater than 0"),
        ("5x", "unknown unit"),
        ("-1s", "negative"),
    ] {
        let err = env.fails(["events", &format!("--interval={bad}"), &id])?;
        ensure!(err.contains(why), "{bad}: {err}");
    }
    Ok(())
}

/// Streams events from `skiff events` until it exits or `timeout` passes.
struct Stream {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Stream {
    fn next_line(&self, timeout: Duration) -> Result<String> {
        self.lines
            .recv_timeout(timeout)
            .context("no event within the timeout")
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stream(env: &Env, id: &str, interval: &str) -> Result<Stream> {
    let mut child = env
        .cmd(["events", "--interval", interval, id])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Ok(Stream { child, lines })
}

#[test]
fn events_stream_stats_and_oom_until_the_container_stops() -> Result<()> {
    // tail buffers an endless line from /dev/zero until the OOM killer ends it.
    let env = Env::new(&["tail", "/dev/zero"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("oom");
    env.edit_spec(|s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"]["memory"] = json!({"limit": 24 * MIB, "swap": 24 * MIB});
    })?;
    let id = env.uid("oom");
    env.create(&id)?;

    let mut ev = stream(&env, &id, "100ms")?;
    // The first stats event proves the OOM watch is registered.
    let first: Value = serde_json::from_str(&ev.next_line(Duration::from_secs(10))?)?;
    ensure!(
        first["type"] == "stats" && first["id"] == json!(id),
        "{first}"
    );
    ensure!(
        first["data"]["memory"]["usage"]["limit"] == json!(24 * MIB),
        "{first}"
    );

    env.ok(["start", &id])?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let status = loop {
        while let Ok(line) = ev.lines.try_recv() {
            seen.push(line);
        }
        if let Some(st) = ev.child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            bail!("events still running 20 s after start; got {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Lines written just before the exit.
    while let Ok(line) = ev.lines.recv_timeout(Duration::from_millis(500)) {
        seen.push(line);
    }
    ensure!(
        status.success(),
        "events exited with {status}; got {seen:?}"
    );
    let oom = json!({"type": "oom", "id": id}).to_string();
    ensure!(seen.contains(&oom), "no {oom} in {seen:?}");
    for line in &seen {
        let v: Value = serde_json::from_str(line)?;
        ensure!(v["type"] == "stats" || v["type"] == "oom", "{line}");
    }
    env.wait_status(&id, "stopped")
}

#[test]
fn events_end_when_the_container_is_killed() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("evkill");
    env.run_detached(&id)?;
    let mut ev = stream(&env, &id, "50ms")?;
    let first: Value = serde_json::from_str(&ev.next_line(Duration::from_secs(10))?)?;
    ensure!(first["type"] == "stats", "{first}");
    env.ok(["kill", &id, "KILL"])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = ev.child.try_wait()? {
            ensure!(st.success(), "events exited with {st}");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("events did not end after the container was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
