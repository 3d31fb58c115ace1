//! `skiff exec` into a running busybox container: exit codes, process.json,
//! the flags that shape the process, --detach with --pid-file, the errors
//! (which exit 255 and leave nothing behind) and a tty through a console socket.

use std::fs;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::Pid;
use serde_json::json;
use skiff_integration::{output_within, pid_alive, wait_until, Env};

const SLEEP: &[&str] = &["sleep", "1000"];
const EXEC_FAILED: i32 = 255;

/// A `sleep` container with its own cgroup, created or (`start`) running.
fn container(env: &Env, name: &str, start: bool) -> Result<String> {
    let cg = env.cgroups_path(name);
    env.edit_spec(|s| s["linux"]["cgroupsPath"] = json!(cg))?;
    let id = env.uid(name);
    if start {
        env.run_detached(&id)?;
    } else {
        env.create(&id)?;
    }
    Ok(id)
}

fn running(env: &Env, name: &str) -> Result<String> {
    container(env, name, true)
}

/// `exec ARGS...` in the foreground with a deadline: (exit code, stdout, stderr).
fn exec(env: &Env, args: &[&str]) -> Result<(i32, String, String)> {
    let mut c = env.cmd(["exec"]);
    c.args(args);
    let out =
        output_within(c, Duration::from_secs(30)).with_context(|| format!("exec {args:?}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn exec_detached(env: &Env, args: &[&str]) -> Result<()> {
    env.ok_detached([&["exec", "--detach"], args].concat())?;
    Ok(())
}

/// `exec ARGS...` must fail as exec itself does (exit 255), saying `cause`.
fn exec_fails(env: &Env, args: &[&str], cause: &str) -> Result<()> {
    let (code, _, err) = exec(env, args)?;
    ensure!(
        code == EXEC_FAILED && err.contains(cause),
        "exec {args:?}: exit {code}, stderr {err:?}"
    );
    Ok(())
}

/// The host pids `ps --format json` lists.
fn ps_pids(env: &Env, id: &str) -> Result<Vec<i32>> {
    Ok(serde_json::from_str(
        &env.ok(["ps", "--format", "json", id])?,
    )?)
}

/// Fails when the state dir holds files libcontainer's exec leaves there
/// unless skiff removes them.
fn no_tenant_files(env: &Env, id: &str) -> Result<()> {
    let left: Vec<String> = fs::read_dir(env.root.join(id))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tenant-"))
        .collect();
    ensure!(left.is_empty(), "exec left {left:?} in the state dir");
    Ok(())
}

#[test]
fn exit_codes_pass_through() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "code")?;

    let (code, out, err) = exec(&env, &[&id, "sh", "-c", "echo out; exit 7"])?;
    ensure!(
        code == 7 && out == "out\n",
        "exit {code}, stdout {out:?}, stderr {err:?}"
    );
    let (code, out, err) = exec(&env, &[&id, "grep", "SigBlk", "/proc/self/status"])?;
    ensure!(code == 0, "exit {code}, stderr {err:?}");
    ensure!(
        out == "SigBlk:\t0000000000000000\n",
        "skiff's blocked signals leaked: {out:?}"
    );
    let (code, _, err) = exec(&env, &[&id, "sh", "-c", "kill -KILL $$"])?;
    ensure!(
        code == 128 + 9,
        "killed by SIGKILL: exit {code}, stderr {err:?}"
    );

    // A signal to skiff reaches the process: sleep dies of SIGTERM → 143.
    let before = ps_pids(&env, &id)?;
    let mut c = env.cmd(["exec", &id, "sleep", "100"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn()?;
    let started = wait_until(10, "the exec'd sleep", || {
        ps_pids(&env, &id).is_ok_and(|p| p.len() > before.len())
    });
    if let Err(e) = started {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("skiff exec did not end after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ensure!(
        status.code() == Some(128 + 15),
        "forwarded SIGTERM: {status}"
    );
    ensure!(
        ps_pids(&env, &id)? == before,
        "the exec'd sleep is still there"
    );
    no_tenant_files(&env, &id)?;
    Ok(())
}

#[test]
fn process_file_describes_the_process() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "pfile")?;
    let file = env.tmp.path().join("process.json");
    let process = json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "echo \"$FOO $(pwd)\"; exit 3"],
        "env": ["PATH=/bin:/usr/bin", "FOO=from-file"],
        "cwd": "/tmp"
    });
    fs::write(&file, serde_json::to_vec(&process)?)?;
    let path = file.to_string_lossy();
    // The command line's flags do not change a process given as a file.
    let (code, out, err) = exec(&env, &["--process", &path, "--env", "FOO=flag", &id])?;
    ensure!(code == 3, "exit {code}, stderr {err:?}");
    ensure!(out == "from-file /tmp\n", "stdout {out:?}");
    Ok(())
}

#[test]
fn env_cwd_user_and_groups_flags() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "flags")?;

    let (code, out, err) = exec(&env, &[&id, "sh", "-c", "env; pwd; id"])?;
    ensure!(code == 0, "exit {code}, stderr {err:?}");
    ensure!(
        out.lines().any(|l| l == "TERM=xterm"),
        "config.json's env is the base: {out}"
    );
    ensure!(
        out.lines().any(|l| l == "/"),
        "default cwd is the spec's: {out}"
    );
    ensure!(out.contains("uid=0(root) gid=0(root)"), "{out}");

    let (code, out, err) = exec(
        &env,
        &[
            "--env",
            "TERM=dumb",
            "-e",
            "FOO=bar baz",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1001",
            "-g",
            "2000",
            "--additional-gids",
            "2001",
            &id,
            "sh",
            "-c",
            "env; pwd; id",
        ],
    )?;
    ensure!(code == 0, "exit {code}, stderr {err:?}");
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.contains(&"FOO=bar baz"), "{out}");
    ensure!(
        lines.contains(&"TERM=dumb") && !lines.contains(&"TERM=xterm"),
        "{out}"
    );
    ensure!(
        lines.iter().any(|l| l.starts_with("PATH=")),
        "PATH kept: {out}"
    );
    ensure!(lines.contains(&"/tmp"), "{out}");
    let id_line = lines
        .iter()
        .find(|l| l.starts_with("uid="))
        .copied()
        .unwrap_or_default();
    ensure!(id_line.starts_with("uid=1000 gid=1001 "), "{id_line}");
    let groups = id_line.split("groups=").nth(1).unwrap_or_default();
    ensure!(
        groups.contains("2000") && groups.contains("2001"),
        "{id_line}"
    );

    // --user with a uid only keeps the spec's gid.
    let (code, out, err) = exec(&env, &["-u", "65534", &id, "id"])?;
    ensure!(code == 0, "exit {code}, stderr {err:?}");
    ensure!(out.starts_with("uid=65534(nobody) gid=0(root)"), "{out}");
    Ok(())
}

/// CapEff of a process in the container, from /proc/self/status.
fn cap_eff(env: &Env, args: &[&str]) -> Result<u64> {
    let (code, out, err) = exec(env, args)?;
    ensure!(code == 0, "exit {code}, stderr {err:?}");
    let hex = out
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .context("no CapEff line")?;
    Ok(u64::from_str_radix(hex.trim(), 16)?)
}

#[test]
fn cap_adds_a_capability() -> Result<()> {
    const NET_ADMIN: u64 = 1 << 12;
    const KILL: u64 = 1 << 5;
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "cap")?;
    let grep = ["grep", "CapEff", "/proc/self/status"];

    let plain = cap_eff(&env, &[&[id.as_str()], &grep[..]].concat())?;
    ensure!(
        plain & KILL != 0 && plain & NET_ADMIN == 0,
        "spec caps: {plain:#x}"
    );
    let added = cap_eff(
        &env,
        &[&["--cap", "CAP_NET_ADMIN", &id], &grep[..]].concat(),
    )?;
    ensure!(
        added == plain | NET_ADMIN,
        "with --cap CAP_NET_ADMIN: {added:#x}, before {plain:#x}"
    );

    exec_fails(&env, &["--cap", "CAP_NOPE", &id, "true"], "CAP_NOPE")?;
    Ok(())
}

#[test]
fn detach_writes_the_pid_file() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "detach")?;
    let pid_file = env.tmp.path().join("exec.pid");

    let started = Instant::now();
    exec_detached(
        &env,
        &[
            "--pid-file",
            &pid_file.to_string_lossy(),
            &id,
            "sleep",
            "321",
        ],
    )?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "--detach waited for the process"
    );
    let pid: i32 = fs::read_to_string(&pid_file)?.trim().parse()?;
    ensure!(pid_alive(pid), "exec'd pid {pid} is not running");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))?;
    ensure!(cmdline == b"sleep\x00321\x00", "pid {pid} runs {cmdline:?}");
    let pids = ps_pids(&env, &id)?;
    ensure!(
        pids.contains(&pid) && pids.contains(&env.pid(&id)?),
        "ps: {pids:?}"
    );
    no_tenant_files(&env, &id)?;

    kill(Pid::from_raw(pid), Signal::SIGKILL)?;
    wait_until(10, "the exec'd sleep to end", || !pid_alive(pid))?;
    ensure!(
        env.status(&id)? == "running",
        "killing the exec'd process stopped the container"
    );
    Ok(())
}

#[test]
fn exec_needs_a_running_container() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let created = container(&env, "created", false)?;
    exec_fails(&env, &[&created, "true"], "created container")?;

    let id = running(&env, "stopped")?;
    exec_fails(&env, &[&id], "args cannot be empty")?;

    env.ok(["pause", &id])?;
    exec_fails(&env, &[&id, "true"], "--ignore-paused")?;
    env.ok(["resume", &id])?;

    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    exec_fails(&env, &[&id, "true"], "cannot exec in a stopped container")?;
    exec_fails(&env, &["no-such-container", "true"], "does not exist")?;
    Ok(())
}

#[test]
fn bad_process_file_is_a_clear_error() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "badp")?;
    let before = ps_pids(&env, &id)?;
    let dir = env.tmp.path();
    let cases = [
        ("missing.json", None, "No such file"),
        ("broken.json", Some("{\"args\": [\"true\"], "), "EOF"),
        (
            "noargs.json",
            Some(r#"{"user": {"uid": 0, "gid": 0}, "cwd": "/"}"#),
            "args",
        ),
        (
            "relcwd.json",
            Some(r#"{"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "tmp"}"#),
            "absolute",
        ),
        (
            "badtype.json",
            Some(r#"{"user": {"uid": "root"}, "args": ["true"], "cwd": "/"}"#),
            "line 1",
        ),
    ];
    for (name, text, cause) in cases {
        let path = dir.join(name);
        if let Some(t) = text {
            fs::write(&path, t)?;
        }
        let (code, out, err) = exec(&env, &["-p", &path.to_string_lossy(), &id])?;
        ensure!(code == EXEC_FAILED, "{name}: exit {code}, stdout {out:?}");
        ensure!(
            err.contains(&*path.to_string_lossy()),
            "{name}: error does not name the file: {err}"
        );
        ensure!(
            err.contains(cause),
            "{name}: error does not say {cause:?}: {err}"
        );
    }
    // A command that cannot be found fails the same way.
    exec_fails(&env, &[&id, "no-such-program"], "no-such-program")?;

    ensure!(env.status(&id)? == "running");
    ensure!(
        ps_pids(&env, &id)? == before,
        "processes left in the container"
    );
    no_tenant_files(&env, &id)?;
    Ok(())
}

/// Accepts one connection on `listener` and receives the fd sent over it.
fn receive_fd(listener: &UnixListener) -> Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (conn, _) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).context("nothing connected to the console socket"),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed `fd` in this process and nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("no file descriptor came over the console socket")
}

/// A pty master as a file for `read_until`, which polls it.
fn nonblocking(master: OwnedFd) -> Result<fs::File> {
    nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok(fs::File::from(master))
}

/// Reads from the pty master until `want` shows up (or it closes, or 10 s pass).
fn read_until(master: &mut fs::File, want: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(want) {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // EIO: the other side of the pty is closed.
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn tty_through_a_console_socket() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "tty")?;
    let sock = env.tmp.path().join("console.sock");
    let listener = UnixListener::bind(&sock)?;

    exec_detached(
        &env,
        &[
            "--tty",
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
            "sh",
        ],
    )?;
    let mut master = nonblocking(receive_fd(&listener)?)?;
    master.write_all(b"echo hi-$((1+2))\nexit\n")?;
    let seen = read_until(&mut master, "hi-3")?;
    ensure!(
        seen.contains("hi-3"),
        "the shell on the pty answered {seen:?}"
    );

    // A process.json's consoleSize is the pty's size from the start, as
    // containerd sets it.
    let file = env.tmp.path().join("tty-process.json");
    let process = json!({
        "terminal": true,
        "consoleSize": {"height": 21, "width": 77},
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "stty size; sleep 1"],
        "env": ["PATH=/bin"],
        "cwd": "/"
    });
    fs::write(&file, serde_json::to_vec(&process)?)?;
    let sock_arg = sock.to_string_lossy();
    exec_detached(
        &env,
        &[
            "--console-socket",
            &sock_arg,
            "-p",
            &file.to_string_lossy(),
            &id,
        ],
    )?;
    let mut master = nonblocking(receive_fd(&listener)?)?;
    let seen = read_until(&mut master, "21 77")?;
    ensure!(seen.contains("21 77"), "stty size on the pty said {seen:?}");

    // --tty needs a socket when detached, and a socket needs --tty.
    exec_fails(&env, &["--tty", "--detach", &id, "true"], "console socket")?;
    exec_fails(
        &env,
        &[
            "--detach",
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
            "true",
        ],
        "console socket",
    )?;
    no_tenant_files(&env, &id)?;
    Ok(())
}

#[test]
fn relative_paths_are_taken_from_the_callers_cwd() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "rel")?;
    let dir = env.tmp.path();
    fs::write(
        dir.join("p.json"),
        r#"{"user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "exit 5"], "cwd": "/"}"#,
    )?;
    let mut c = env.cmd(["exec", "-p", "p.json", "--pid-file", "p.pid", &id]);
    c.current_dir(dir);
    let out = output_within(c, Duration::from_secs(30))?;
    ensure!(out.status.code() == Some(5), "{out:?}");
    let pid = fs::read_to_string(Path::new(dir).join("p.pid"))?;
    ensure!(
        pid.trim().parse::<i32>().is_ok_and(|p| p > 0),
        "pid file holds {pid:?}"
    );
    Ok(())
}

#[test]
fn foreground_tty_is_relayed() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "fgtty")?;

    // Without a terminal of our own: output comes through the pty (\r\n).
    let (code, out, err) = exec(&env, &["-t", &id, "sh", "-c", "tty; echo $((2+3)); exit 4"])?;
    ensure!(code == 4, "exit {code}, stderr {err:?}");
    ensure!(
        out.starts_with("/dev/pts/") && out.ends_with("\r\n5\r\n"),
        "{out:?}"
    );

    // On a terminal: its size goes to the pty, and its mode is restored after.
    let size = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None)?;
    let before = nix::sys::termios::tcgetattr(&pty.slave)?;
    let slave = fs::File::from(pty.slave);
    let mut c = env.cmd(["exec", "-t", &id, "stty", "size"]);
    c.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave.try_clone()?);
    let status = c.status()?;
    let after = nix::sys::termios::tcgetattr(&slave)?;
    drop(slave);
    let seen = read_until(&mut nonblocking(pty.master)?, "33 111")?;
    ensure!(status.code() == Some(0), "{status}: {seen:?}");
    ensure!(seen.contains("33 111"), "stty size said {seen:?}");
    ensure!(
        after.local_flags == before.local_flags && after.input_flags == before.input_flags,
        "terminal mode not restored"
    );
    no_tenant_files(&env, &id)?;
    let left: Vec<_> = fs::read_dir(env.root.join(&id))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("console"))
        .collect();
    ensure!(left.is_empty(), "console socket left: {left:?}");
    Ok(())
}

#[test]
fn seccomp_filter_applies_to_exec() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    env.edit_spec(|s| {
        s["root"]["readonly"] = json!(false);
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    })?;
    for nnp in [true, false] {
        env.edit_spec(|s| s["process"]["noNewPrivileges"] = json!(nnp))?;
        let id = running(&env, &format!("seccomp{nnp}"))?;
        let init = env.pid(&id)?;
        let init_status = fs::read_to_string(format!("/proc/{init}/status"))?;
        let field = |status: &str, name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let script =
            "grep -E '^(Seccomp|CapEff|CapPrm|NoNewPrivs):' /proc/self/status; mkdir /tmp/d";
        let (code, out, err) = exec(&env, &[&id, "sh", "-c", script])?;
        ensure!(
            code == 1 && err.contains("Operation not permitted"),
            "nnp {nnp}: mkdir allowed: {code} {err}"
        );
        ensure!(
            field(&out, "Seccomp:") == "2",
            "nnp {nnp}: no filter: {out}"
        );
        for name in ["CapEff:", "CapPrm:", "NoNewPrivs:"] {
            ensure!(
                field(&out, name) == field(&init_status, name),
                "nnp {nnp}: {name} differs from init's: {out}"
            );
        }
    }
    Ok(())
}

#[test]
fn ignore_paused_starts_the_process_on_resume() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "paused")?;
    let pid_file = env.tmp.path().join("paused.pid");
    env.ok(["pause", &id])?;

    let mut c = env.cmd(["exec", "--detach", "--ignore-paused", "--pid-file"]);
    c.arg(&pid_file).args([&id, "sleep", "300"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn()?;
    let result = (|| -> Result<()> {
        // The new process is frozen with the container, and must not keep
        // other commands (resume above all) from the container.
        std::thread::sleep(Duration::from_millis(300));
        ensure!(
            child.try_wait()?.is_none(),
            "exec finished in a paused container"
        );
        let out = output_within(
            env.cmd(["ps", "--format", "json", &id]),
            Duration::from_secs(10),
        )?;
        ensure!(out.status.success(), "ps during a paused exec: {out:?}");
        env.ok(["resume", &id])?;
        wait_until(10, "exec to return after resume", || {
            child.try_wait().ok().flatten().is_some()
        })?;
        Ok(())
    })();
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        let _ = env.skiff(["resume", &id]);
    }
    result?;
    ensure!(child.wait()?.success(), "exec --ignore-paused failed");
    let pid: i32 = fs::read_to_string(&pid_file)?.trim().parse()?;
    ensure!(
        ps_pids(&env, &id)?.contains(&pid),
        "exec'd {pid} not in the container"
    );
    Ok(())
}

/// The container's own cgroup directories (one per hierarchy it uses).
fn container_cgroups(init: i32) -> Result<Vec<std::path::PathBuf>> {
    let root = Path::new("/sys/fs/cgroup");
    let unified = root.join("cgroup.controllers").exists();
    let text = fs::read_to_string(format!("/proc/{init}/cgroup"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            let first = ctrl.split(',').next()?;
            let dir = match unified {
                true if ctrl.is_empty() => root.to_path_buf(),
                false if !first.is_empty() && !first.starts_with("name=") && path != "/" => {
                    root.join(first)
                }
                _ => return None,
            };
            Some(dir.join(path.trim_start_matches('/')))
        })
        .collect())
}

#[test]
fn cgroup_puts_the_process_in_an_existing_sub_cgroup() -> Result<()> {
    let env = Env::new(SLEEP)?;
    let _g = env.guard();
    let id = running(&env, "subcg")?;
    let init = env.pid(&id)?;

    exec_fails(&env, &["--cgroup", "nope", &id, "true"], "does not exist")?;
    exec_fails(&env, &["--cgroup", "../up", &id, "true"], "below")?;
    // "/" is the container's own cgroup (runc accepts it), also per controller.
    for root in ["/", "memory:/"] {
        let (code, _, err) = exec(&env, &["--cgroup", root, &id, "true"])?;
        ensure!(code == 0, "--cgroup {root}: exit {code}: {err}");
    }
    let dirs = container_cgroups(init)?;
    ensure!(!dirs.is_empty(), "no cgroup found for {init}");
    ensure!(
        dirs.iter().all(|d| !d.join("nope").exists()),
        "a failed --cgroup created the sub-cgroup"
    );

    for d in &dirs {
        fs::create_dir(d.join("sub"))?;
    }
    let (code, out, err) = exec(&env, &["--cgroup", "sub", &id, "cat", "/proc/self/cgroup"])?;
    for d in &dirs {
        let _ = fs::remove_dir(d.join("sub"));
    }
    ensure!(code == 0, "exit {code}: {err}");
    let placed = out.lines().filter(|l| l.ends_with("/sub")).count();
    ensure!(
        placed == dirs.len(),
        "not in the sub-cgroup everywhere: {out}"
    );
    Ok(())
}
