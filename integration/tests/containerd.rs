//! containerd 1.6 drives skiff through its stock runc v2 shim (skiff as the
//! shim's runc binary): run, output, exit codes, detached tasks, exec, kill,
//! delete, each against a private containerd.

use anyhow::Result;
use skiff_integration::client::Client;
use skiff_integration::containerd::{text, Containerd};

#[test]
fn run_rm_prints_output() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    let out = c.ctr_run("hello", &["--rm", image, "hello", "echo", "hello"])?;
    let good = out.status.success() && text(&out.stdout) == "hello\n";
    c.expect_output("ctr run", &out, good)?;
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
    let good = out.status.code() == Some(7) && text(&out.stderr).contains("err");
    c.expect_output("ctr run", &out, good)?;
    c.assert_clean()
}

#[test]
fn detached_task_exec_kill_delete() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    c.run_detached("sleeper", &[image, "sleeper", "sleep", "100"])?;

    let out = c.exec("sleeper", "hi", &["echo", "hi"])?;
    let good = out.status.success() && text(&out.stdout) == "hi\n";
    c.expect_output("ctr task exec", &out, good)?;
    let out = c.exec("sleeper", "five", &["sh", "-c", "exit 5"])?;
    assert_eq!(out.status.code(), Some(5), "stderr {}", text(&out.stderr));

    let out = c.exec("sleeper", "missing", &["/no/such/binary"])?;
    let good = !out.status.success() && text(&out.stderr).contains("/no/such/binary");
    c.expect_output("exec of a missing binary", &out, good)?;

    // ctr task ps asks skiff (ps --format json) for the container's pids.
    c.ps_pause_resume("sleeper")?;

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
    let good = !out.status.success() && text(&out.stderr).contains("/no/such/binary");
    c.expect_output("ctr run", &out, good)?;
    c.ok(["container", "delete", "missing"]).ok();
    c.assert_clean()
}

/// ctr wants a terminal for --tty: util-linux's script gives it one. The shim
/// passes skiff a console socket and relays the pty.
#[test]
fn run_with_tty_goes_through_console_socket() -> Result<()> {
    let c = Containerd::start()?;
    let image = c.import_busybox()?;
    let mut line = "run --rm --tty".to_string();
    for f in c.run_flags("tty") {
        line.push(' ');
        line.push_str(&f.to_string_lossy());
    }
    line.push_str(&format!(" {image} tty sh -c 'tty; exit 6'"));
    let out = c.ctr_with_tty(&line)?;
    let good = out.status.code() == Some(6) && text(&out.stdout).contains("/dev/pts/0");
    c.expect_output("ctr run --tty", &out, good)?;
    // skiff was given a console socket.
    c.assert_called(&["--console-socket"])?;
    c.assert_clean()
}
