//! The shim as a container monitor (monitor.json in the bundle), driven as
//! skiffctl drives it, with no containerd: the json-file log (streams,
//! times, rotation, a terminal), the state file (exit code, signal, times,
//! pause, an OOM kill), the restart policy (on-failure:N counted as docker
//! counts, always until the user stops it, a stop during the back-off,
//! stdin and exec across a restart, CloseIO), the on-exit command run once,
//! health checks (starting → healthy, unhealthy with the probe's output, a
//! probe timing out and leaving nothing behind), and twenty containers on
//! one grouped shim with its memory measured. Verdicts never depend on
//! timing: the tests poll the state file with generous deadlines.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use skiff_integration::monitor::{processes_with, pss_kb, Ctr, MonitorEnv};
use skiff_integration::wait_until;
use skiff_specs::jsonlog::Entry;
use skiff_specs::monitor::{HealthConfig, MonitorState, RestartPolicy, Status};

fn exited(s: &MonitorState) -> bool {
    s.status == Status::Exited
}

fn time_of(t: &str) -> Result<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(t).with_context(|| format!("bad time {t:?}"))
}

/// The numbers N of entries `PREFIX-N\n` of `stream`, in log order.
fn numbered(entries: &[Entry], stream: &str, prefix: &str) -> Vec<u32> {
    entries
        .iter()
        .filter(|e| e.stream == stream)
        .filter_map(|e| e.log.strip_suffix('\n')?.strip_prefix(prefix)?.parse().ok())
        .collect()
}

#[test]
fn output_goes_to_a_rotated_json_file_log() -> Result<()> {
    let e = MonitorEnv::new()?;
    let script = "i=0; while [ $i -lt 300 ]; do echo out-$i; i=$((i+1)); done; printf last-words";
    let c = e.container("log", &["sh", "-c", script], |_, cfg| {
        if let Some(l) = cfg.log.as_mut() {
            l.max_size = 2000;
            l.max_file = 3;
        }
    })?;
    // Two streams, each its own entries (their order between them is the
    // copiers' business).
    let both = e.container(
        "streams",
        &["sh", "-c", "echo to-out; echo to-err >&2"],
        |_, _| {},
    )?;
    for x in [&c, &both] {
        let mut shim = e.start_shim(x)?;
        e.run(&mut shim, x)?;
        let st = x.wait_state("the exit", exited)?;
        if st.exit_code != 0 {
            bail!("exit code {} for a clean exit", st.exit_code);
        }
        shim.wait_gone()?;
    }
    let mut got: Vec<(String, String)> =
        both.log()?.into_iter().map(|e| (e.stream, e.log)).collect();
    got.sort();
    let want = [("stderr", "to-err\n"), ("stdout", "to-out\n")];
    if got != want.map(|(s, l)| (s.to_string(), l.to_string())) {
        bail!("entries {got:?}, want {want:?}");
    }

    // Three files at most, none above max-size, every line a json entry
    // with docker's time format.
    let path = c.log_path()?;
    for n in [1, 2] {
        if !skiff_specs::jsonlog::rotated(path, n).exists() {
            bail!("no rotated log .{n}");
        }
    }
    if skiff_specs::jsonlog::rotated(path, 3).exists() {
        bail!("a fourth log file was kept");
    }
    for f in skiff_specs::jsonlog::files(path, 3) {
        let text = std::fs::read_to_string(&f)?;
        if text.len() > 2000 {
            bail!("{} holds {} bytes, above max-size", f.display(), text.len());
        }
        for line in text.lines() {
            let entry: Entry = serde_json::from_str(line)
                .with_context(|| format!("{}: not an entry: {line:?}", f.display()))?;
            time_of(&entry.time)?;
            if !entry.time.ends_with('Z') || !entry.time.contains('.') {
                bail!(
                    "entry time {:?} is not RFC 3339 UTC with a fraction",
                    entry.time
                );
            }
        }
    }
    // The newest lines are kept, in order, up to the last; the output's end
    // without a newline is an entry of its own.
    let entries = c.log()?;
    let nums = numbered(&entries, "stdout", "out-");
    if nums.last() != Some(&299) || nums.len() < 20 || nums.windows(2).any(|w| w[1] != w[0] + 1) {
        bail!("stdout entries out of order or incomplete: {nums:?}");
    }
    let last = entries.last().context("empty log")?;
    if (last.log.as_str(), last.stream.as_str()) != ("last-words", "stdout") {
        bail!("last entry {last:?}");
    }
    Ok(())
}

#[test]
fn a_terminal_is_logged_as_stdout() -> Result<()> {
    let e = MonitorEnv::new()?;
    let script = "echo on-the-tty; echo also-stderr >&2";
    let c = e.container("tty", &["sh", "-c", script], |spec, _| {
        spec["process"]["terminal"] = json!(true);
    })?;
    let mut shim = e.start_shim(&c)?;
    e.create(&mut shim, &c, "", true)?;
    shim.start(&c.id)?;
    c.wait_state("the exit", exited)?;
    let entries = c.log()?;
    let text: String = entries.iter().map(|e| e.log.as_str()).collect();
    if !text.contains("on-the-tty\r\n") || !text.contains("also-stderr\r\n") {
        bail!("tty output missing from the log: {entries:?}");
    }
    if entries.iter().any(|e| e.stream != "stdout") {
        bail!("a terminal's output is stdout only: {entries:?}");
    }
    shim.wait_gone()
}

#[test]
fn exit_code_signal_and_times_are_recorded() -> Result<()> {
    let e = MonitorEnv::new()?;
    let code = e.container("code", &["sh", "-c", "exit 3"], |_, _| {})?;
    let mut shim = e.start_shim(&code)?;
    e.create(&mut shim, &code, "", false)?;
    let st = code.state()?;
    if st.status != Status::Created || st.monitor_pid != shim.pid {
        bail!(
            "after create: {st:?}, want created with monitor_pid {}",
            shim.pid
        );
    }
    shim.start(&code.id)?;
    let st = code.wait_state("the exit", exited)?;
    if st.exit_code != 3 || st.pid != 0 || st.restart_count != 0 {
        bail!("state {st:?}: want exit code 3, pid 0, no restart");
    }
    if time_of(&st.finished_at)? < time_of(&st.started_at)? {
        bail!(
            "finished_at {} before started_at {}",
            st.finished_at,
            st.started_at
        );
    }
    // Alone on its shim: the shim ends with the container, socket and all.
    shim.wait_gone()?;
    if shim.socket.exists() {
        bail!("the shim left its socket {}", shim.socket.display());
    }

    let killed = e.container("killed", &["sleep", "1000"], |_, _| {})?;
    let mut shim = e.start_shim(&killed)?;
    let pid = e.run(&mut shim, &killed)?;
    let st = killed.wait_state("running", |s| s.status == Status::Running)?;
    if st.pid != pid as i32 || st.started_at.is_empty() {
        bail!("running state {st:?}, want pid {pid}");
    }
    shim.pause(&killed.id)?;
    killed.wait_state("paused", |s| s.status == Status::Paused)?;
    shim.resume(&killed.id)?;
    killed.wait_state("running again", |s| s.status == Status::Running)?;
    shim.kill(&killed.id, 9)?
        .map_err(|(c, m)| anyhow::anyhow!("Kill: {c}: {m}"))?;
    let st = killed.wait_state("the exit", exited)?;
    if st.exit_code != 128 + 9 {
        bail!("exit code {} after SIGKILL, want 137", st.exit_code);
    }
    shim.wait_gone()
}

#[test]
fn stdin_fifo_is_reopened_on_restart_and_closed_by_close_io() -> Result<()> {
    use std::io::Write;
    let e = MonitorEnv::new()?;
    let fifo = e.env.tmp.path().join("stdin.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    // The first run reads a line and fails; the second (it finds the
    // first one's mark on a host directory) copies stdin until CloseIO.
    let marks = e.env.tmp.path().join("marks");
    std::fs::create_dir(&marks)?;
    let script = "if [ -e /home/again ]; then cat; else read l; echo got-$l; \
                  touch /home/again; exit 1; fi";
    let c = e.container("stdin", &["sh", "-c", script], |spec, cfg| {
        if let Some(m) = spec["mounts"].as_array_mut() {
            m.push(
                json!({"destination": "/home", "type": "bind", "source": marks,
                          "options": ["rbind", "rw"]}),
            );
        }
        cfg.restart = RestartPolicy::OnFailure { max: 1 };
    })?;
    let mut shim = e.start_shim(&c)?;
    e.create(&mut shim, &c, &fifo.to_string_lossy(), false)?;
    shim.start(&c.id)?;
    // The shim holds the FIFO open: this open does not wait.
    let mut input = std::fs::OpenOptions::new().write(true).open(&fifo)?;
    input.write_all(b"first\n")?;
    c.wait_state("the restart", |s| {
        s.status == Status::Running && s.restart_count == 1
    })?;
    input.write_all(b"second\n")?;
    wait_until(60, "the second run's echo", || {
        c.log().is_ok_and(|l| l.iter().any(|e| e.log == "second\n"))
    })?;
    shim.close_stdin(&c.id)?;
    let st = c.wait_state("cat's end at CloseIO", exited)?;
    if st.exit_code != 0 || st.restart_count != 1 {
        bail!("state {st:?}: want a clean exit after one restart");
    }
    let lines: Vec<String> = c.log()?.into_iter().map(|e| e.log).collect();
    if lines != ["got-first\n", "second\n"] {
        bail!("log {lines:?}");
    }
    shim.wait_gone()
}

#[test]
fn an_oom_kill_is_recorded() -> Result<()> {
    let e = MonitorEnv::new()?;
    let hog = "x=0123456789; while :; do x=$x$x; done";
    let c = e.container("oom", &["sh", "-c", hog], |spec, _| {
        spec["linux"]["resources"]["memory"] = json!({"limit": 33554432});
    })?;
    let mut shim = e.start_shim(&c)?;
    e.run(&mut shim, &c)?;
    shim.wait_gone()?;
    let st = c.state()?;
    if st.status != Status::Exited || st.exit_code != 137 || !st.oom_killed {
        bail!("state {st:?}: want exited by the OOM killer (137, oom_killed)");
    }
    Ok(())
}

/// An on-exit command that appends a line to `file`; `tag` names it in
/// the process table.
fn on_exit_appending(file: &Path, tag: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("echo ran >> {}", file.display()),
        tag.into(),
    ]
}

/// Waits until the on-exit command tagged `tag` ran and none of it is left
/// running, then returns how often it ran.
fn on_exit_runs(file: &Path, tag: &str) -> Result<usize> {
    wait_until(60, "the on-exit command", || {
        file.exists() && processes_with(tag).is_empty()
    })?;
    Ok(std::fs::read_to_string(file)?.lines().count())
}

#[test]
fn on_failure_restarts_exactly_n_times_then_runs_on_exit_once() -> Result<()> {
    let e = MonitorEnv::new()?;
    let ran = e.env.tmp.path().join("on-exit-ran");
    let tag = format!("on-exit-{}", e.env.tag());
    let c = e.container("flaky", &["sh", "-c", "echo run; exit 2"], |_, cfg| {
        cfg.restart = RestartPolicy::OnFailure { max: 3 };
        cfg.on_exit = on_exit_appending(&ran, &tag);
    })?;
    let mut shim = e.start_shim(&c)?;
    e.run(&mut shim, &c)?;
    // The shim exits after the final exit: nothing changes the state later.
    shim.wait_gone()?;
    let st = c.state()?;
    if st.status != Status::Exited || st.restart_count != 3 || st.exit_code != 2 {
        bail!("final state {st:?}: want exited, exit code 2, 3 restarts");
    }
    let runs = c.log()?.iter().filter(|e| e.log == "run\n").count();
    if runs != 4 {
        bail!("the container ran {runs} times, want 1 + 3 restarts");
    }
    let n = on_exit_runs(&ran, &tag)?;
    if n != 1 {
        bail!("the on-exit command ran {n} times");
    }
    Ok(())
}

#[test]
fn always_restarts_until_the_user_stops_it() -> Result<()> {
    let e = MonitorEnv::new()?;
    let c = e.container(
        "always",
        &["sh", "-c", "echo up; exec sleep 1000"],
        |_, cfg| {
            cfg.restart = RestartPolicy::Always;
        },
    )?;
    let mut shim = e.start_shim(&c)?;
    let first = e.run(&mut shim, &c)?;
    c.wait_state("running", |s| s.status == Status::Running)?;

    // Killed without the stop marker: the policy runs it again, and Kill
    // and Pids then work on the new init.
    shim.kill(&c.id, 9)?
        .map_err(|(c, m)| anyhow::anyhow!("Kill: {c}: {m}"))?;
    let st = c.wait_state("the restart", |s| {
        s.status == Status::Running && s.restart_count == 1
    })?;
    if st.pid == first as i32 || st.pid <= 0 || st.exit_code != 0 {
        bail!("restarted state {st:?} (first pid {first})");
    }
    let pids = shim.pids(&c.id)?;
    if !pids.contains(&(st.pid as u64)) {
        bail!("Pids {pids:?} lacks the new init {}", st.pid);
    }
    let status = shim.exec(&c.id, "after-restart", &["sh", "-c", "exit 5"])?;
    if status != 5 {
        bail!("an exec in the restarted container returned {status}");
    }
    wait_until(60, "the second run's output", || {
        c.log()
            .is_ok_and(|l| l.iter().filter(|e| e.log == "up\n").count() == 2)
    })?;

    // The user's stop: the marker first, then the signal. Final.
    std::fs::write(&c.config.stop_marker, b"")?;
    shim.kill(&c.id, 9)?
        .map_err(|(c, m)| anyhow::anyhow!("Kill: {c}: {m}"))?;
    shim.wait_gone()?;
    let st = c.state()?;
    if st.status != Status::Exited || st.restart_count != 1 || st.exit_code != 137 {
        bail!("stopped state {st:?}: want exited by SIGKILL after 1 restart");
    }

    // A stop during the back-off between quick exits ends it for good too.
    let quick = e.container("quick", &["sh", "-c", "exit 1"], |_, cfg| {
        cfg.restart = RestartPolicy::Always;
    })?;
    let mut shim = e.start_shim(&quick)?;
    e.run(&mut shim, &quick)?;
    quick.wait_state("a few restarts", |s| s.restart_count >= 3)?;
    // Nothing of the earlier runs is left in the shim: at most one run's
    // OOM watcher and output copiers.
    wait_until(60, "one run's threads", || {
        threads_named(shim.pid, "oom") <= 1 && threads_named(shim.pid, "log") <= 2
    })?;
    std::fs::write(&quick.config.stop_marker, b"")?;
    // As the engine's stop does; the init may be gone (back-off) already.
    let _ = shim.kill(&quick.id, 9)?;
    shim.wait_gone()?;
    let st = quick.state()?;
    if st.status != Status::Exited || st.exit_code != 1 {
        bail!("state {st:?} after a stop during the back-off");
    }
    Ok(())
}

#[test]
fn a_failed_restart_is_the_final_exit_with_its_error() -> Result<()> {
    let e = MonitorEnv::new()?;
    let ran = e.env.tmp.path().join("on-exit-ran");
    let tag = format!("on-exit-{}", e.env.tag());
    let c = e.container("broken", &["sh", "-c", "exit 4"], |_, cfg| {
        cfg.restart = RestartPolicy::Always;
        cfg.on_exit = on_exit_appending(&ran, &tag);
    })?;
    let mut shim = e.start_shim(&c)?;
    e.run(&mut shim, &c)?;
    c.wait_state("a restart", |s| s.restart_count >= 1)?;
    // The next run cannot be created from this bundle.
    std::fs::write(c.bundle.join("config.json"), "{not json")?;
    shim.wait_gone()?;
    let st = c.state()?;
    if st.status != Status::Exited || st.exit_code != 4 || st.error.is_empty() {
        bail!("state {st:?}: want exited with the last exit code and an error");
    }
    let n = on_exit_runs(&ran, &tag)?;
    if n != 1 {
        bail!("the on-exit command ran {n} times");
    }
    Ok(())
}

/// A health check running `test` often.
fn health(test: &[&str], retries: u32, timeout_ms: u64, start_period_s: u64) -> HealthConfig {
    HealthConfig {
        test: test.iter().map(|s| s.to_string()).collect(),
        interval_ns: 100_000_000,
        timeout_ns: timeout_ms * 1_000_000,
        start_period_ns: start_period_s * 1_000_000_000,
        start_interval_ns: 0,
        retries,
    }
}

fn health_of(s: &MonitorState) -> (&str, u32, usize) {
    s.health.as_ref().map_or(("", 0, 0), |h| {
        (h.status.as_str(), h.failing_streak, h.log.len())
    })
}

#[test]
fn health_goes_from_starting_to_healthy() -> Result<()> {
    let e = MonitorEnv::new()?;
    let c = e.container("healthy", &["sleep", "1000"], |spec, cfg| {
        // A writable /tmp on the read-only rootfs.
        if let Some(m) = spec["mounts"].as_array_mut() {
            m.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        }
        // Failures in the (long) start period do not count.
        cfg.health = Some(health(&["CMD-SHELL", "cat /tmp/ready"], 1, 5000, 3600));
    })?;
    let mut shim = e.start_shim(&c)?;
    e.run(&mut shim, &c)?;
    let st = c.wait_state("two failed probes", |s| health_of(s).2 >= 2)?;
    let h = st.health.as_ref().context("no health state")?;
    if (h.status.as_str(), h.failing_streak) != ("starting", 0) {
        bail!("health {h:?}: failures in the start period count");
    }
    let r = &h.log[0];
    if r.exit_code != 1 || !r.output.contains("/tmp/ready") {
        bail!("probe result {r:?}: want cat's failure");
    }
    if time_of(&r.end)? < time_of(&r.start)? {
        bail!("probe ended before it started: {r:?}");
    }
    std::fs::write(format!("/proc/{}/root/tmp/ready", st.pid), "ready\n")?;
    let st = c.wait_state("healthy", |s| health_of(s).0 == "healthy")?;
    let h = st.health.as_ref().context("no health state")?;
    let last = h.log.last().context("no result")?;
    if h.failing_streak != 0 || last.exit_code != 0 || last.output != "ready\n" {
        bail!("healthy state {h:?}");
    }
    std::fs::write(&c.config.stop_marker, b"")?;
    let _ = shim.kill(&c.id, 9)?;
    shim.wait_gone()
}

#[test]
fn failing_health_checks_make_it_unhealthy() -> Result<()> {
    let e = MonitorEnv::new()?;
    let c = e.container("unhealthy", &["sleep", "1000"], |_, cfg| {
        cfg.health = Some(health(&["CMD-SHELL", "echo bad-probe; exit 1"], 2, 5000, 0));
    })?;
    let mut shim = e.start_shim(&c)?;
    e.run(&mut shim, &c)?;
    let st = c.wait_state("unhealthy", |s| health_of(s).0 == "unhealthy")?;
    if health_of(&st).1 < 2 {
        bail!(
            "unhealthy after fewer failures than retries: {:?}",
            st.health
        );
    }
    // The log keeps the last five results, with their output.
    let st = c.wait_state("five results", |s| health_of(s).2 >= 5)?;
    let h = st.health.as_ref().context("no health state")?;
    if h.log.len() != 5 {
        bail!("{} results kept, want 5", h.log.len());
    }
    if let Some(r) = h
        .log
        .iter()
        .find(|r| r.exit_code != 1 || r.output != "bad-probe\n")
    {
        bail!("probe result {r:?}");
    }
    std::fs::write(&c.config.stop_marker, b"")?;
    let _ = shim.kill(&c.id, 9)?;
    shim.wait_gone()
}

#[test]
fn a_hanging_probe_times_out_and_is_killed() -> Result<()> {
    let e = MonitorEnv::new()?;
    // An argument only this test's probes have.
    let secs = format!("{}", 1000 + std::process::id() % 1000);
    let needle = format!("sleep\0{secs}");
    let c = e.container("hang", &["sleep", "1000"], |_, cfg| {
        cfg.health = Some(health(&["CMD", "sleep", &secs], 1, 200, 0));
    })?;
    let mut shim = e.start_shim(&c)?;
    e.run(&mut shim, &c)?;
    let st = c.wait_state("two timed-out probes", |s| health_of(s).2 >= 2)?;
    let h = st.health.as_ref().context("no health state")?;
    for r in &h.log {
        if r.exit_code != -1 || r.output != "Health check exceeded timeout (200ms)" {
            bail!("probe result {r:?}");
        }
    }
    if h.status != "unhealthy" {
        bail!("health {h:?} after timeouts with retries 1");
    }
    // Timed-out probes are gone: at most the one running now is left.
    let left = processes_with(&needle);
    if left.len() > 1 {
        bail!("probes left running: {left:?}");
    }
    std::fs::write(&c.config.stop_marker, b"")?;
    let _ = shim.kill(&c.id, 9)?;
    shim.wait_gone()?;
    wait_until(60, "no probe left", || processes_with(&needle).is_empty())
}

/// How many threads of `pid` are called `name`.
fn threads_named(pid: i32, name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

#[test]
fn twenty_containers_share_one_monitor() -> Result<()> {
    let e = MonitorEnv::new()?;
    let group = format!("group-{}", e.env.tag());
    let mut ctrs: Vec<Ctr> = Vec::new();
    for i in 0..20 {
        let script = format!("echo hello-{i}; exec sleep 1000");
        let c = e.container(&format!("c{i}"), &["sh", "-c", &script], |spec, _| {
            Ctr::group(spec, &group);
        })?;
        ctrs.push(c);
    }
    let mut shims = Vec::new();
    for c in &ctrs {
        let mut shim = e.start_shim(c)?;
        e.run(&mut shim, c)?;
        shims.push(shim);
    }
    let pid = shims[0].pid;
    if let Some(other) = shims.iter().find(|s| s.pid != pid) {
        bail!("two shims for one group: {pid} and {}", other.pid);
    }
    for c in &ctrs {
        c.wait_state("running", |s| {
            s.status == Status::Running && s.monitor_pid == pid
        })?;
        wait_until(60, "the container's output", || {
            c.log().is_ok_and(|l| !l.is_empty())
        })?;
    }
    // Idle as the engine leaves it: each with a log, no health check, and
    // no client connected (skiffctl has exited).
    drop(shims);
    wait_until(60, "the shim's connection threads to end", || {
        threads_named(pid, "client_handler") == 0
    })?;
    let pss = pss_kb(pid)?;
    eprintln!(
        "monitor PSS for 20 idle containers: {pss} kB ({} kB per container)",
        pss / 20
    );
    if pss > 20 * 415 {
        bail!("the monitor takes {pss} kB PSS for 20 containers, more than conmon's 20 x 415 kB");
    }

    // One stopped: its exit is final; a Delete for it answers plainly, and
    // the shim goes on serving the others.
    let first = &ctrs[0];
    std::fs::write(&first.config.stop_marker, b"")?;
    let shim = &mut e.start_shim(first)?;
    shim.kill(&first.id, 9)?
        .map_err(|(c, m)| anyhow::anyhow!("Kill: {c}: {m}"))?;
    first.wait_state("the exit", exited)?;
    wait_until(60, "the container to be forgotten", || {
        shim.delete(&first.id).is_ok_and(|r| r.is_err())
    })?;
    let pids = shim.pids(&ctrs[1].id)?;
    if pids.is_empty() {
        bail!("the shim lists no process of a running container");
    }
    for c in &ctrs[1..] {
        std::fs::write(&c.config.stop_marker, b"")?;
        shim.kill(&c.id, 9)?
            .map_err(|(c, m)| anyhow::anyhow!("Kill: {c}: {m}"))?;
    }
    for c in &ctrs {
        c.wait_state("the exit", exited)?;
    }
    // The last one gone, the shim ends.
    shim.wait_gone()
}
