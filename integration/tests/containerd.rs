//! containerd 1.6 drives skiff through its stock runc v2 shim (skiff as the
//! shim's runc binary): run, output, exit codes, detached tasks, exec, kill,
//! delete, each against a private containerd.

use anyhow::{bail, Result};
use skiff_integration::client::Client;
use skiff_integration::containerd::Containerd;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_rm_prints_output() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    let out = c.ctr_run("hello", &["--rm", image, "hello", "echo", "hello"])?;
    if !out.status.success() || text(&out.stdout) != "hello\n" {
        bail!(
            "ctr run: {}, stdout {:?}, stderr {:?}\nskiff calls:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            c.calls()
        );
    }
    c.assert_called(&["create --bundle", "start hello", "delete hello"])?;
    c.assert_clean()
}

#[test]
fn run_rm_returns_exit_code() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
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
    c.assert_clean()
}

#[test]
fn detached_task_exec_kill_delete() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    c.ctr_run("sleeper", &["--detach", image, "sleeper", "sleep", "100"])
        .and_then(|o| {
            if o.status.success() {
                Ok(())
            } else {
                bail!(
                    "ctr run -d: {}: {}\nskiff calls:\n{}",
                    o.status,
                    text(&o.stderr),
                    c.calls()
                )
            }
        })?;
    c.wait_task("sleeper", "RUNNING")?;

    let fifo = c.tmp.path().join("fifo");
    let exec = |id: &str, cmd: &[&str]| {
        let mut args = vec!["task", "exec", "--exec-id", id, "--fifo-dir"];
        let fifo = fifo.to_string_lossy();
        args.push(&fifo);
        args.push("sleeper");
        args.extend_from_slice(cmd);
        c.run(args)
    };
    let out = exec("hi", &["echo", "hi"])?;
    if !out.status.success() || text(&out.stdout) != "hi\n" {
        bail!(
            "ctr task exec: {}, stdout {:?}, stderr {:?}\nskiff calls:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            c.calls()
        );
    }
    let out = exec("five", &["sh", "-c", "exit 5"])?;
    assert_eq!(out.status.code(), Some(5), "stderr {}", text(&out.stderr));

    let out = exec("missing", &["/no/such/binary"])?;
    if out.status.success() || !text(&out.stderr).contains("/no/such/binary") {
        bail!(
            "exec of a missing binary: {}, stderr {:?}",
            out.status,
            text(&out.stderr)
        );
    }

    // ctr task ps asks skiff (ps --format json) for the container's pids.
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

    c.ok(["task", "kill", "--all", "--signal", "SIGKILL", "sleeper"])?;
    c.wait_task("sleeper", "STOPPED")?;
    c.ok(["task", "delete", "sleeper"])?;
    c.ok(["container", "delete", "sleeper"])?;
    c.assert_called(&[
        "exec --process",
        "ps --format json sleeper",
        "pause sleeper",
        "resume sleeper",
        "kill --all sleeper 9",
        "delete sleeper",
    ])?;
    c.assert_clean()
}

#[test]
fn missing_executable_fails_with_runtime_message() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    let out = c.ctr_run("missing", &["--rm", image, "missing", "/no/such/binary"])?;
    let stderr = text(&out.stderr);
    if out.status.success() || !stderr.contains("/no/such/binary") {
        bail!(
            "ctr run: {}, stderr {stderr:?}\nskiff calls:\n{}",
            out.status,
            c.calls()
        );
    }
    c.ok(["container", "delete", "missing"]).ok();
    c.assert_clean()
}

/// ctr wants a terminal for --tty: util-linux's script gives it one. The shim
/// passes skiff a console socket and relays the pty.
#[test]
fn run_with_tty_goes_through_console_socket() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    let mut line = format!(
        "ctr --address {} --namespace {} run --rm --tty",
        c.socket.display(),
        c.namespace
    );
    for f in c.run_flags("tty") {
        line.push(' ');
        line.push_str(&f.to_string_lossy());
    }
    line.push_str(&format!(" {image} tty sh -c 'tty; exit 6'"));
    let mut cmd = std::process::Command::new("script");
    cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .stdin(std::process::Stdio::null());
    let out = skiff_integration::output_within(cmd, std::time::Duration::from_secs(60))?;
    let stdout = text(&out.stdout);
    if out.status.code() != Some(6) || !stdout.contains("/dev/pts/0") {
        bail!(
            "ctr run --tty: {}, stdout {stdout:?}, stderr {:?}\nskiff calls:\n{}",
            out.status,
            text(&out.stderr),
            c.calls()
        );
    }
    // skiff was given a console socket.
    c.assert_called(&["--console-socket"])?;
    c.assert_clean()
}
