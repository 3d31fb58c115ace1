//! podman 4 (through conmon) drives skiff: run, exit codes, output, a tty,
//! detached containers, exec, stop and rm, each on a private podman storage.

use anyhow::{bail, Result};
use skiff_integration::client::Client;
use skiff_integration::podman::Podman;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_rm_returns_exit_code_and_output() -> Result<()> {
    let p = Podman::new()?;
    let out = p.run_ctr(&[
        "--rm",
        p.image(),
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ])?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if out.status.code() != Some(3) || stdout != "out\n" || !stderr.contains("err") {
        bail!(
            "exit {:?}, stdout {stdout:?}, stderr {stderr:?}\nskiff calls:\n{}",
            out.status.code(),
            p.calls()
        );
    }
    p.assert_called(&["create --bundle", "start ", "delete --force"])?;
    assert_eq!(p.ok(["ps", "--all", "--quiet"])?, "");
    p.assert_clean()
}

#[test]
fn run_with_tty_goes_through_console_socket() -> Result<()> {
    let p = Podman::new()?;
    let out = p.run_ctr(&["--rm", "--tty", p.image(), "sh", "-c", "tty; exit 4"])?;
    let stdout = text(&out.stdout);
    if out.status.code() != Some(4) || !stdout.contains("/dev/pts/0") {
        bail!(
            "exit {:?}, stdout {stdout:?}, stderr {:?}\nskiff calls:\n{}",
            out.status.code(),
            text(&out.stderr),
            p.calls()
        );
    }
    // skiff was given a console socket.
    p.assert_called(&["--console-socket"])?;
    p.assert_clean()
}

#[test]
fn detached_container_exec_stop_rm() -> Result<()> {
    let p = Podman::new()?;
    let out = p.run_ctr(&["--detach", "--name", "sleeper", p.image(), "sleep", "100"])?;
    if !out.status.success() {
        bail!(
            "podman run -d failed: {}\nskiff calls:\n{}",
            text(&out.stderr),
            p.calls()
        );
    }
    let status = p.ok(["inspect", "--format", "{{.State.Status}}", "sleeper"])?;
    assert_eq!(status.trim(), "running");
    // skiff's own view agrees: the container podman made is running.
    let id = p.ok(["inspect", "--format", "{{.Id}}", "sleeper"])?;
    assert_eq!(p.skiff_containers(), vec![id.trim().to_owned()]);

    assert_eq!(p.ok(["exec", "sleeper", "echo", "hi"])?, "hi\n");
    let out = p.run(["exec", "sleeper", "sh", "-c", "exit 5"])?;
    assert_eq!(out.status.code(), Some(5), "stderr {}", text(&out.stderr));
    let ps = p.ok(["exec", "sleeper", "ps", "-o", "comm"])?;
    if !ps.contains("sleep") {
        bail!("exec'd ps does not see the container's sleep: {ps:?}");
    }

    let tty = p.ok(["exec", "--tty", "sleeper", "tty"])?;
    if !tty.starts_with("/dev/pts/") {
        bail!("exec --tty got no pty: {tty:?}");
    }

    p.ok(["pause", "sleeper"])?;
    let status = p.ok(["inspect", "--format", "{{.State.Status}}", "sleeper"])?;
    assert_eq!(status.trim(), "paused");
    p.ok(["unpause", "sleeper"])?;
    let status = p.ok(["inspect", "--format", "{{.State.Status}}", "sleeper"])?;
    assert_eq!(status.trim(), "running");

    // sleep as pid 1 ignores SIGTERM, so stop falls back to SIGKILL after 1 s.
    p.ok(["stop", "--time", "1", "sleeper"])?;
    let status = p.ok(["inspect", "--format", "{{.State.Status}}", "sleeper"])?;
    assert_eq!(status.trim(), "exited");
    p.ok(["rm", "sleeper"])?;
    assert_eq!(p.ok(["ps", "--all", "--quiet"])?, "");
    p.assert_called(&["exec ", "kill ", "pause ", "resume ", "delete --force"])?;
    p.assert_clean()
}

#[test]
fn missing_executable_exits_127_with_runtime_message() -> Result<()> {
    let p = Podman::new()?;
    let out = p.run_ctr(&["--rm", p.image(), "/no/such/binary"])?;
    let stderr = text(&out.stderr);
    if out.status.code() != Some(127) || !stderr.contains("/no/such/binary") {
        bail!(
            "exit {:?}, stderr {stderr:?}\nskiff calls:\n{}",
            out.status.code(),
            p.calls()
        );
    }
    p.assert_clean()
}

#[test]
fn update_changes_the_memory_limit() -> Result<()> {
    let p = Podman::new()?;
    let out = p.run_ctr(&[
        "--detach",
        "--name",
        "upd",
        "--memory",
        "64m",
        p.image(),
        "sleep",
        "100",
    ])?;
    if !out.status.success() {
        bail!(
            "podman run -d failed: {}\nskiff calls:\n{}",
            text(&out.stderr),
            p.calls()
        );
    }
    let id = p.ok(["inspect", "--format", "{{.Id}}", "upd"])?;
    let limit_file = p
        .container_cgroup("memory", id.trim())
        .join("memory.limit_in_bytes");
    let limit = || std::fs::read_to_string(&limit_file).map(|s| s.trim().to_owned());
    assert_eq!(limit()?, (64u64 << 20).to_string());
    p.ok(["update", "--memory", "96m", "upd"])?;
    assert_eq!(limit()?, (96u64 << 20).to_string());
    p.assert_called(&["update --resources"])?;
    p.ok(["rm", "--force", "--time", "0", "upd"])?;
    p.assert_clean()
}

/// The spec podman writes uses much of the runtime spec: seccomp, masked and
/// read-only paths, bind mounts from its storage, tmpfs with runc's tmpcopyup
/// extension, a read-only cgroup mount, users, rlimits.
#[test]
fn podman_spec_features_take_effect() -> Result<()> {
    let p = Podman::new()?;
    let vol = p.tmp.path().join("vol");
    std::fs::create_dir_all(&vol)?;
    std::fs::write(vol.join("in"), "from host\n")?;
    let bind = format!("{}:/data:ro", vol.display());
    let script = "id -u; id -g; pwd; hostname; echo $FOO; cat /data/in; \
        touch /data/x 2>/dev/null || echo data-ro; \
        touch /x 2>/dev/null || echo root-ro; \
        echo ok > /scratch/f && cat /scratch/f; \
        head -n 1 /etc/passwd; \
        ulimit -n; grep Seccomp: /proc/self/status; \
        echo max 2>/dev/null > /sys/fs/cgroup/pids/pids.max || echo cgroup-ro";
    let out = p.run_ctr(&[
        "--rm",
        "--read-only",
        "--user",
        "65534:65534",
        "--workdir",
        "/tmp",
        "--hostname",
        "boat",
        "--env",
        "FOO=bar",
        "--volume",
        &bind,
        "--tmpfs",
        "/scratch:mode=1777",
        "--tmpfs",
        "/etc",
        "--pids-limit",
        "50",
        p.image(),
        "sh",
        "-c",
        script,
    ])?;
    let stdout = text(&out.stdout);
    let want = "65534\n65534\n/tmp\nboat\nbar\nfrom host\ndata-ro\nroot-ro\nok\n\
                root:x:0:0:root:/root:/bin/sh\n1024\nSeccomp:\t2\ncgroup-ro\n";
    if !out.status.success() || stdout != want {
        bail!(
            "exit {:?}, stdout {stdout:?} (want {want:?}), stderr {:?}\nskiff calls:\n{}",
            out.status.code(),
            text(&out.stderr),
            p.calls()
        );
    }
    p.assert_clean()
}

#[test]
fn podman_info_reports_skiff() -> Result<()> {
    let p = Podman::new()?;
    let info = p.ok([
        "info",
        "--format",
        "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}",
    ])?;
    if !info.contains("bin/skiff skiff version ") {
        bail!("podman info shows runtime {info:?}");
    }
    Ok(())
}
