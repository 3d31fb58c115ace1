//! containerd 1.6 runs tasks through skiff's own shim, containerd-shim-skiff-v2
//! (runtime io.containerd.skiff.v2): output, exit codes, exec with and without
//! a tty, kill, pause/resume, metrics, ps, OOM events, a containerd restart,
//! no shim left behind, many containers at once, CloseIO on an exec's stdin,
//! no output lost by short tty execs under load.

use anyhow::{bail, Context, Result};
use skiff_integration::client::Client;
use skiff_integration::containerd::text;
use skiff_integration::shim::ShimContainerd;

#[test]
fn run_rm_prints_output_and_returns_exit_code() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let out = c.ctr_run("hello", &["--rm", image, "hello", "echo", "hello"])?;
    let good = out.status.success() && text(&out.stdout) == "hello\n";
    c.expect_output("ctr run", &out, good)?;
    let out = c.ctr_run(
        "code",
        &["--rm", image, "code", "sh", "-c", "echo err >&2; exit 7"],
    )?;
    let good = out.status.code() == Some(7) && text(&out.stderr).contains("err");
    c.expect_output("ctr run", &out, good)?;
    c.assert_called(&["create --bundle", "start hello", "delete hello"])?;
    c.assert_clean_soon()
}

#[test]
fn detached_task_exec_tty_ps_pause_metrics_kill() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("sleeper", &[image, "sleeper", "sleep", "100"])?;

    let out = c.exec("sleeper", "hi", &["sh", "-c", "echo hi; echo oops >&2"])?;
    let good =
        out.status.success() && text(&out.stdout) == "hi\n" && text(&out.stderr).contains("oops");
    c.expect_output("ctr task exec", &out, good)?;
    let out = c.exec("sleeper", "five", &["sh", "-c", "exit 5"])?;
    assert_eq!(out.status.code(), Some(5), "stderr {}", text(&out.stderr));
    let out = c.exec("sleeper", "missing", &["/no/such/binary"])?;
    if out.status.success() {
        bail!("exec of a missing binary succeeded: {}", text(&out.stderr));
    }

    // With a tty: the shim receives the pty master through the console socket.
    let fifo = c.tmp.path().join("fifo");
    let out = c.ctr_with_tty(&format!(
        "task exec --tty --exec-id tty --fifo-dir {} sleeper sh -c 'tty; exit 3'",
        fifo.display()
    ))?;
    let good = out.status.code() == Some(3) && text(&out.stdout).contains("/dev/pts/");
    c.expect_output("ctr task exec --tty", &out, good)?;
    c.assert_called(&["exec --process", "--console-socket"])?;

    c.ps_pause_resume("sleeper")?;

    // cgroup v1 metrics: the memory usage of a running sleep is not zero.
    let metrics = c.ok(["task", "metrics", "--format", "json", "sleeper"])?;
    let v: serde_json::Value = serde_json::from_str(&metrics)?;
    let usage = v
        .pointer("/memory/usage/usage")
        .or_else(|| v.pointer("/memory/usage"))
        .and_then(|u| u.as_u64())
        .unwrap_or(0);
    if usage == 0 {
        bail!("ctr task metrics shows no memory usage: {metrics}");
    }

    c.remove_task("sleeper")?;
    c.assert_called(&[
        "pause sleeper",
        "resume sleeper",
        "ps --format json sleeper",
    ])?;
    c.assert_clean_soon()
}

/// `ctr events` in the background, killed when dropped.
struct Events {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Events {
    fn start(c: &ShimContainerd) -> Result<Self> {
        let out = c.tmp.path().join("events.log");
        let file = std::fs::File::create(&out)?;
        let mut cmd = c.cmd(["events"]);
        cmd.stdout(file).stderr(std::process::Stdio::null());
        let child = cmd.spawn()?;
        // ctr subscribes asynchronously; give it a moment to be listening.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(Self { child, out })
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The topics of the events that mention `needle`, in order.
    fn topics(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(String::from)
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory limit, then a shell that doubles a string until the kernel kills
/// it: the shim reports TaskOOM (cgroup v1 eventfd or v2 memory.events), and
/// task and exec events come in containerd's order.
#[test]
fn oom_and_event_order() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let events = Events::start(&c)?;

    c.run_detached("evs", &[image, "evs", "sleep", "100"])?;
    let out = c.exec("evs", "ex1", &["true"])?;
    if !out.status.success() {
        bail!("exec: {}: {}", out.status, text(&out.stderr));
    }
    c.ok(["task", "kill", "--signal", "SIGKILL", "evs"])?;
    c.wait_task("evs", "STOPPED")?;
    c.ok(["task", "delete", "evs"])?;

    let out = c.ctr_run(
        "oom",
        &[
            "--rm",
            "--memory-limit",
            "33554432",
            image,
            "oom",
            "sh",
            "-c",
            "x=0123456789; while :; do x=$x$x; done",
        ],
    )?;
    if out.status.code() != Some(137) {
        bail!(
            "the memory hog ended with {} (want 137, SIGKILL): {}",
            out.status,
            text(&out.stderr)
        );
    }
    skiff_integration::wait_until(5, "the OOM event", || {
        events.topics("\"oom\"").iter().any(|t| t == "/tasks/oom")
    })
    .map_err(|e| anyhow::anyhow!("{e}; events:\n{}", events.text()))?;

    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let got = events.topics("\"evs\"");
    if got != want {
        bail!("events of evs: {got:?}, want {want:?}\n{}", events.text());
    }
    c.ok(["container", "delete", "evs"])?;
    c.assert_clean_soon()
}

/// containerd restarts while a task runs: it reconnects to the shim, which
/// kept the container and its IO, and the task can still be used.
#[test]
fn containerd_restart_readopts_running_task() -> Result<()> {
    let mut c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("keep", &[image, "keep", "sleep", "100"])?;
    let pid = c.task_pid("keep")?;
    let shims = c.shims();
    c.restart()?;
    c.wait_task("keep", "RUNNING")?;
    if c.task_pid("keep")? != pid || c.shims() != shims {
        bail!(
            "after the restart: pid {} (was {pid}), shims {:?} (were {shims:?})",
            c.task_pid("keep")?,
            c.shims()
        );
    }
    let out = c.exec("keep", "after", &["echo", "still here"])?;
    c.expect_output(
        "exec after restart",
        &out,
        text(&out.stdout) == "still here\n",
    )?;
    c.remove_task("keep")?;
    c.assert_clean_soon()
}

/// The Rust runc shim leaks a shim process after an exec; ours must not.
#[test]
fn exec_then_kill_and_delete_leaves_no_shim() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("leak", &[image, "leak", "sleep", "100"])?;
    if c.shims().len() != 1 {
        bail!("want one shim, found {:?}", c.shims());
    }
    let out = c.exec("leak", "e0", &["echo", "x"])?;
    if text(&out.stdout) != "x\n" {
        bail!("exec: {}: {}", out.status, text(&out.stderr));
    }
    // A second exec still running when the task is killed.
    let fifo = c.tmp.path().join("fifo");
    let fifo = fifo.to_string_lossy();
    c.ok([
        "task",
        "exec",
        "--detach",
        "--exec-id",
        "e1",
        "--fifo-dir",
        &fifo,
        "leak",
        "sleep",
        "1000",
    ])?;
    c.ok(["task", "kill", "--all", "--signal", "SIGKILL", "leak"])?;
    c.wait_task("leak", "STOPPED")?;
    c.ok(["task", "delete", "leak"])?;
    c.ok(["container", "delete", "leak"])?;
    skiff_integration::wait_until(5, "the shim to exit", || c.shims().is_empty())?;
    c.assert_clean()
}

#[test]
fn twenty_containers_in_parallel() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let c = &c;
                s.spawn(move || -> Result<()> {
                    let id = format!("par{i}");
                    let msg = format!("n{i}");
                    let out = c.ctr_run(&id, &["--rm", image, &id, "echo", &msg])?;
                    let good = out.status.success() && text(&out.stdout) == format!("{msg}\n");
                    c.expect_output(&id, &out, good)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
            })
            .collect()
    });
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if !failed.is_empty() {
        bail!("{} of 20 failed:\n{}", failed.len(), failed.join("\n"));
    }
    c.assert_clean_soon()
}

/// The shim dies (SIGKILL): containerd runs `containerd-shim-skiff-v2 delete`,
/// which force-deletes the container, unmounts its rootfs and removes the
/// socket, and the task is gone. Also prints the idle shim's RSS.
#[test]
fn dead_shim_is_cleaned_up_by_delete_action() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("dead", &[image, "dead", "sleep", "100"])?;
    let shims = c.shims();
    let [shim] = shims.as_slice() else {
        bail!("want one shim, found {shims:?}");
    };
    let address = std::fs::read_to_string(c.bundle("dead").join("address"))?;
    let socket = std::path::PathBuf::from(address.trim_start_matches("unix://"));
    let status = std::fs::read_to_string(format!("/proc/{shim}/status"))?;
    if let Some(rss) = status.lines().find(|l| l.starts_with("VmRSS")) {
        eprintln!("idle shim {rss}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(*shim),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    // containerd notices the closed connection, runs the delete action and
    // drops the task.
    skiff_integration::wait_until(10, "containerd to drop the task", || {
        matches!(c.task_status("dead"), Ok(None))
    })?;
    skiff_integration::wait_until(10, "the shim's delete action", || {
        c.calls().contains("delete --force dead")
    })
    .map_err(|e| anyhow::anyhow!("{e}\ncontainerd log:\n{}", c.log()))?;
    skiff_integration::wait_until(5, "the dead shim's socket to be removed", || {
        !socket.exists()
    })?;
    c.ok(["container", "delete", "dead"])?;
    c.assert_clean_soon()
}

/// `file://` and `binary://` log URIs (nerdctl logs through binary://): the
/// shim appends to the file, or starts the logging program with the
/// container's stdout and stderr on fds 3 and 4.
#[test]
fn log_uris_file_and_binary() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let cmd = ["sh", "-c", "echo to-out; echo to-err >&2"];

    let log = c.tmp.path().join("logs/file.log");
    let uri = format!("file://{}", log.display());
    let mut args = vec!["--rm", "--log-uri", &uri, image, "flog"];
    args.extend_from_slice(&cmd);
    let out = c.ctr_run("flog", &args)?;
    c.expect_output("ctr run --log-uri file", &out, out.status.success())?;
    let got = std::fs::read_to_string(&log).unwrap_or_default();
    if !got.contains("to-out") || !got.contains("to-err") {
        bail!("{} holds {got:?}", log.display());
    }

    let logger = c.tmp.path().join("logger.sh");
    let sink = c.tmp.path().join("binary.log");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\n# ready: close fd 5\nexec 5>&-\ncat <&3 >> '{0}' &\ncat <&4 >> '{0}'\nwait\n",
            sink.display()
        ),
    )?;
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let uri = format!("binary://{}", logger.display());
    let mut args = vec!["--rm", "--log-uri", &uri, image, "blog"];
    args.extend_from_slice(&cmd);
    let out = c.ctr_run("blog", &args)?;
    c.expect_output("ctr run --log-uri binary", &out, out.status.success())?;
    skiff_integration::wait_until(5, "the logging binary's output", || {
        let got = std::fs::read_to_string(&sink).unwrap_or_default();
        got.contains("to-out") && got.contains("to-err")
    })?;
    c.assert_clean_soon()
}

/// Containers with the same io.kubernetes.cri.sandbox-id share one shim,
/// which exits after the last of them is deleted.
#[test]
fn one_shim_per_pod() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let pod = "--annotation=io.kubernetes.cri.sandbox-id=pod1";
    c.run_detached("pod-a", &[pod, image, "pod-a", "sleep", "100"])?;
    c.run_detached("pod-b", &[pod, image, "pod-b", "sleep", "100"])?;
    let shims = c.shims();
    if shims.len() != 1 {
        bail!("two containers of one pod run under shims {shims:?}");
    }
    let out = c.exec("pod-b", "eb", &["echo", "in b"])?;
    if text(&out.stdout) != "in b\n" {
        bail!("exec in pod-b: {}: {}", out.status, text(&out.stderr));
    }
    for id in ["pod-a", "pod-b"] {
        c.remove_task(id)?;
        if id == "pod-a" && c.shims() != shims {
            bail!("the pod's shim is gone while pod-b lives: {:?}", c.shims());
        }
    }
    c.assert_clean_soon()
}

/// A container in the host's (the test's) pid namespace: when its init dies the shim
/// kills the processes it left (they would not die with a pid namespace).
#[test]
fn init_exit_kills_the_rest_without_pid_namespace() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    // The test's own pid namespace.
    let ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    c.run_detached(
        "hostpid",
        &[
            "--with-ns",
            &ns,
            image,
            "hostpid",
            "sh",
            "-c",
            "sleep 1000 & sleep 1000",
        ],
    )?;
    c.remove_task("hostpid")?;
    c.assert_called(&["kill --all hostpid 9"])?;
    c.assert_clean_soon()
}

/// A live container driven over the shim's socket directly, as containerd
/// 2.x does (containerd.task.v3.Task): State, Update (memory limit through
/// `runtime update --resources -`), Stats (the cgroup metrics type).
#[test]
fn task_api_v3_on_a_live_container() -> Result<()> {
    use skiff_integration::shim::{bytes_field, call, fields};
    const V3: &str = "containerd.task.v3.Task";
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("v3", &[image, "v3", "sleep", "100"])?;
    let mut conn = c.connect("v3")?;
    let mut id = Vec::new();
    bytes_field(1, b"v3", &mut id);

    let state =
        call(&mut conn, 1, V3, "State", &id)?.map_err(|e| anyhow::anyhow!("State: {e:?}"))?;
    let state = fields(&state)?;
    let pid = state.iter().find(|f| f.0 == 3).map(|f| f.2.to_string());
    let status = state.iter().find(|f| f.0 == 4).map(|f| f.2);
    if pid.as_deref() != Some(c.task_pid("v3")?.as_str()) || status != Some(2) {
        bail!("v3 State: pid {pid:?}, status {status:?} (want RUNNING, 2)");
    }

    let limit: u64 = 96 * 1024 * 1024;
    let mut any = Vec::new();
    bytes_field(
        1,
        b"types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
        &mut any,
    );
    bytes_field(
        2,
        format!("{{\"memory\":{{\"limit\":{limit}}}}}").as_bytes(),
        &mut any,
    );
    let mut update = id.clone();
    bytes_field(2, &any, &mut update);
    call(&mut conn, 3, V3, "Update", &update)?.map_err(|e| anyhow::anyhow!("Update: {e:?}"))?;
    let memory = skiff_integration::cgroup_dir("memory", &format!("{}/v3", c.cgroup_parent));
    let file = if skiff_integration::cgroup_v1("memory") {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let got = skiff_integration::read_trimmed(&memory.join(file))?;
    if got != limit.to_string() {
        bail!(
            "after Update, {} is {got}, want {limit}",
            memory.join(file).display()
        );
    }

    let stats =
        call(&mut conn, 5, V3, "Stats", &id)?.map_err(|e| anyhow::anyhow!("Stats: {e:?}"))?;
    let any = fields(&stats)?
        .into_iter()
        .find(|f| f.0 == 1)
        .context("Stats without stats")?;
    let type_url = fields(&any.1)?
        .into_iter()
        .find(|f| f.0 == 1)
        .map(|f| String::from_utf8_lossy(&f.1).into_owned());
    let want = if skiff_integration::cgroup_v1("memory") {
        "io.containerd.cgroups.v1.Metrics"
    } else {
        "io.containerd.cgroups.v2.Metrics"
    };
    if type_url.as_deref() != Some(want) {
        bail!("Stats type {type_url:?}, want {want}");
    }
    drop(conn);

    c.remove_task("v3")?;
    c.assert_clean_soon()
}

/// Reads the non-blocking FIFO `f` into `got` until it holds `want`, for up
/// to 10 s (a writer may not be there yet: end of file then means "not yet").
fn read_until(f: &mut std::fs::File, got: &mut String, want: &str) -> Result<()> {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = [0u8; 256];
    while !got.contains(want) {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        if std::time::Instant::now() > deadline {
            bail!("waited 10 s for {want:?}; the exec wrote {got:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// An exec with a stdin FIFO, over the task API: its input reaches the
/// process, and CloseIO gives the process end of file although the FIFO's
/// writer (the test) keeps it open, after what was still in the FIFO.
#[test]
fn close_io_ends_an_execs_stdin() -> Result<()> {
    use skiff_integration::shim::{bytes_field, call, fields, varint};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    const V2: &str = "containerd.task.v2.Task";
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("cio", &[image, "cio", "sleep", "100"])?;

    let fifos = c.tmp.path().join("cio-fifos");
    std::fs::create_dir_all(&fifos)?;
    let (stdin, stdout) = (fifos.join("stdin"), fifos.join("stdout"));
    for f in [&stdin, &stdout] {
        nix::unistd::mkfifo(f, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    }
    // Read-write: opening never blocks and the FIFO always has a writer.
    let mut input = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&stdin)?;
    let mut output = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&stdout)?;

    let mut conn = c.connect("cio")?;
    let mut ids = Vec::new();
    bytes_field(1, b"cio", &mut ids);
    bytes_field(2, b"e1", &mut ids);
    let process = serde_json::json!({
        "args": ["sh", "-c", "read line; echo got $line; cat; echo eof"],
        "cwd": "/",
        "env": ["PATH=/bin:/usr/bin"],
        "user": {"uid": 0, "gid": 0},
    });
    let mut spec = Vec::new();
    bytes_field(
        1,
        b"types.containerd.io/opencontainers/runtime-spec/1/Process",
        &mut spec,
    );
    bytes_field(2, process.to_string().as_bytes(), &mut spec);
    let mut exec = ids.clone();
    bytes_field(4, stdin.as_os_str().as_encoded_bytes(), &mut exec);
    bytes_field(5, stdout.as_os_str().as_encoded_bytes(), &mut exec);
    bytes_field(7, &spec, &mut exec);
    call(&mut conn, 1, V2, "Exec", &exec)?.map_err(|e| anyhow::anyhow!("Exec: {e:?}"))?;
    call(&mut conn, 3, V2, "Start", &ids)?.map_err(|e| anyhow::anyhow!("Start: {e:?}"))?;

    input.write_all(b"hello\n")?;
    let mut got = String::new();
    read_until(&mut output, &mut got, "got hello\n")?;
    // Input still on its way when CloseIO comes reaches the process first.
    input.write_all(b"late\n")?;
    let mut close = ids.clone();
    varint(3 << 3, &mut close);
    varint(1, &mut close);
    call(&mut conn, 5, V2, "CloseIO", &close)?.map_err(|e| anyhow::anyhow!("CloseIO: {e:?}"))?;
    read_until(&mut output, &mut got, "eof\n")?;
    if !got.ends_with("late\neof\n") {
        bail!("input written just before CloseIO was lost: the exec wrote {got:?}");
    }
    let wait = call(&mut conn, 7, V2, "Wait", &ids)?.map_err(|e| anyhow::anyhow!("Wait: {e:?}"))?;
    let status = fields(&wait)?
        .into_iter()
        .find(|f| f.0 == 1)
        .map_or(0, |f| f.2);
    if status != 0 {
        bail!("the exec exited {status}; it wrote {got:?}");
    }
    call(&mut conn, 9, V2, "Delete", &ids)?.map_err(|e| anyhow::anyhow!("Delete: {e:?}"))?;
    drop((input, output, conn));

    c.remove_task("cio")?;
    c.assert_clean_soon()
}

/// Busy loops on half the CPUs (at least one), for as long as it lives:
/// killed when dropped, so also when the test fails half-way. Half: with
/// every CPU busy the test would take minutes.
struct CpuLoad(Vec<std::process::Child>);

impl CpuLoad {
    fn start() -> Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut load = Self(Vec::new());
        for _ in 0..(cpus / 2).max(1) {
            let child = std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("cannot start a busy loop")?;
            load.0.push(child);
        }
        Ok(load)
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Issue 9: an `exec -t` so short that it is gone before the shim's Start
/// looks for its exit must still have its output passed on, and taken by
/// ctr, before the exit shows (ctr drops what it has not read when it sees
/// the exit). 2,000 of them under CPU load, a few at a time: every one
/// prints its token.
#[test]
fn short_tty_execs_under_load_lose_no_output() -> Result<()> {
    const EXECS: usize = 2000;
    const AT_ONCE: usize = 4;
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("racer", &[image, "racer", "sleep", "1000"])?;
    let fifo = c.tmp.path().join("fifo");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let lost = std::sync::Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    let load = CpuLoad::start()?;
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= EXECS {
                    break;
                }
                let token = format!("token-{i}");
                let out = c.ctr_with_tty(&format!(
                    "task exec --tty --exec-id x{i} --fifo-dir {} racer echo {token}",
                    fifo.display()
                ));
                let failure = match out {
                    Ok(out) if out.status.success() && text(&out.stdout).contains(&token) => {
                        continue
                    }
                    Ok(out) => format!("exec {i}: {}, output {:?}", out.status, text(&out.stdout)),
                    Err(e) => format!("exec {i}: {e:#}"),
                };
                lost.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
            });
        }
    });
    drop(load);
    eprintln!("{EXECS} tty execs in {:?}", started.elapsed());
    let lost = lost.into_inner().unwrap_or_else(|p| p.into_inner());
    if !lost.is_empty() {
        bail!(
            "{} of {EXECS} tty execs lost their output, e.g.:\n{}",
            lost.len(),
            lost.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    c.remove_task("racer")?;
    c.assert_clean_soon()
}
