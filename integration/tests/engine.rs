//! skiffctl end to end: real containers, networks, volumes and monitors on a
//! private engine root per test (see integration/src/engine.rs), each
//! leaving nothing behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use skiff_integration::engine::EngineEnv;

/// A host port nothing listens on right now.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// An HTTP/1.0 GET; the response body.
fn http_get(host: &str, port: u16) -> Result<String> {
    let mut s =
        TcpStream::connect((host, port)).with_context(|| format!("connect {host}:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

/// Polls an HTTP GET until it answers (a server starting up).
fn http_eventually(host: &str, port: u16) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match http_get(host, port) {
            Ok(body) if !body.is_empty() => return Ok(body),
            other => {
                if std::time::Instant::now() > deadline {
                    bail!("no answer on {host}:{port}: {other:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The host's first non-loopback IPv4 address.
fn host_address() -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-4", "addr", "show"])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for link in v.as_array().into_iter().flatten() {
        if link["ifname"] == "lo"
            || link["ifname"]
                .as_str()
                .is_some_and(|n| n.starts_with("sk-"))
        {
            continue;
        }
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if let Some(ip) = a["local"].as_str() {
                return Ok(ip.to_owned());
            }
        }
    }
    bail!("the host has no non-loopback IPv4 address")
}

/// An image serving /www on port 8000 with busybox httpd.
fn web_image(env: &EngineEnv, tag: &str) -> Result<()> {
    env.build(
        tag,
        &format!(
            "FROM {}\nRUN mkdir -p /www && echo hello-web > /www/index.html\nEXPOSE 8000\n\
             CMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
            env.busybox()
        ),
        &[],
    )
}

#[test]
fn run_detached_with_a_published_port() -> Result<()> {
    let env = EngineEnv::new()?;
    web_image(&env, "web")?;
    let port = free_port()?;
    let name = env.name("web");
    let id = env.ok([
        "run",
        "-d",
        "-p",
        &format!("{port}:8000"),
        "--name",
        &name,
        "web",
    ])?;
    ensure!(id.trim().len() == 64, "run -d printed {id:?}");
    ensure!(http_eventually("127.0.0.1", port)?.contains("hello-web"));
    ensure!(http_eventually(&host_address()?, port)?.contains("hello-web"));
    // The container reaches its own published port through the host (hairpin).
    let ip = host_address()?;
    let out = env.ok([
        "exec",
        &name,
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {ip} {port}"),
    ])?;
    ensure!(out.contains("hello-web"), "hairpin: {out}");
    let ps = env.ok(["ps"])?;
    ensure!(
        ps.contains(&name) && ps.contains(&format!("0.0.0.0:{port}->8000/tcp")),
        "{ps}"
    );
    let port_out = env.ok(["port", &name])?;
    ensure!(
        port_out.contains(&format!("8000/tcp -> 0.0.0.0:{port}")),
        "{port_out}"
    );
    // The port is taken now: a second container is refused before anything exists.
    let other = env.name("other");
    let err = env.fails([
        "run",
        "-d",
        "-p",
        &format!("{port}:8000"),
        "--name",
        &other,
        "web",
    ])?;
    ensure!(err.contains("port is already allocated"), "{err}");
    // A name in use is refused.
    let err = env.fails(["run", "-d", "--name", &name, "web"])?;
    ensure!(err.contains("is already in use"), "{err}");
    env.ok(["rm", "-f", &name])?;
    env.ok(["rm", "-f", &other]).ok();
    env.assert_clean()
}

#[test]
fn user_networks_resolve_names_and_stay_isolated() -> Result<()> {
    let env = EngineEnv::new()?;
    web_image(&env, "web")?;
    let (n1, n2) = (env.name("net1"), env.name("net2"));
    env.ok(["network", "create", &n1])?;
    env.ok(["network", "create", &n2])?;
    let (a, b, c) = (env.name("a"), env.name("b"), env.name("c"));
    env.ok([
        "run",
        "-d",
        "--name",
        &a,
        "--network",
        &n1,
        "--network-alias",
        "svc",
        "web",
    ])?;
    env.ok(["run", "-d", "--name", &b, "--network", &n1, "web"])?;
    env.ok(["run", "-d", "--name", &c, "--network", &n2, "web"])?;
    let get = |from: &str, host: &str| {
        env.run([
            "exec",
            from,
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc {host} 8000"),
        ])
    };
    for host in [a.as_str(), "svc"] {
        let out = get(&b, host)?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("hello-web"),
            "{b} -> {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ip_a = env.inspect(&a, "{{.NetworkSettings.IPAddress}}")?;
    let out = get(&c, &ip_a)?;
    ensure!(
        !String::from_utf8_lossy(&out.stdout).contains("hello-web"),
        "a container on another network reached {a}"
    );
    let err = env.fails(["network", "rm", &n1])?;
    ensure!(err.contains("active endpoints"), "{err}");
    env.ok(["rm", "-f", &a, &b, &c])?;
    env.ok(["network", "rm", &n1, &n2])?;
    env.assert_clean()
}

#[test]
fn named_volumes_keep_data_and_copy_up_from_the_image() -> Result<()> {
    let env = EngineEnv::new()?;
    env.build(
        "seeded",
        &format!(
            "FROM {}\nRUN mkdir /data && echo seed > /data/seed\n",
            env.busybox()
        ),
        &[],
    )?;
    let vol = env.name("vol");
    let c1 = env.name("c1");
    let out = env.ok([
        "run",
        "--name",
        &c1,
        "-v",
        &format!("{vol}:/data"),
        "seeded",
        "sh",
        "-c",
        "cat /data/seed; echo kept > /data/mine",
    ])?;
    ensure!(out.contains("seed"), "copy-up: {out:?}");
    env.ok(["rm", &c1])?;
    let out = env.ok([
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/data"),
        "seeded",
        "cat",
        "/data/mine",
    ])?;
    ensure!(out.contains("kept"), "volume data across rm: {out:?}");
    ensure!(env.ok(["volume", "ls", "-q"])?.contains(&vol));
    let c2 = env.name("c2");
    env.ok([
        "create",
        "--name",
        &c2,
        "-v",
        &format!("{vol}:/data"),
        "seeded",
        "true",
    ])?;
    let err = env.fails(["volume", "rm", &vol])?;
    ensure!(err.contains("in use"), "{err}");
    env.ok(["rm", "-v", &c2])?;
    ensure!(
        !env.ok(["volume", "ls", "-q"])?.contains(&vol),
        "rm -v kept the volume"
    );
    env.assert_clean()
}

#[test]
fn health_checks_go_healthy_or_unhealthy() -> Result<()> {
    let env = EngineEnv::new()?;
    env.build(
        "hc",
        &format!(
            "FROM {}\nHEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD test -f /tmp/ok\n\
             CMD [\"sh\", \"-c\", \"sleep 1; touch /tmp/ok; exec sleep 1000\"]\n",
            env.busybox()
        ),
        &[],
    )?;
    let good = env.name("good");
    env.ok(["run", "-d", "--name", &good, "hc"])?;
    ensure!(env.inspect(&good, "{{.State.Health.Status}}")? == "starting");
    env.wait_for(&good, "{{.State.Health.Status}}", "healthy", 30)?;
    let bad = env.name("bad");
    env.ok([
        "run",
        "-d",
        "--name",
        &bad,
        "--health-cmd",
        "echo broken-probe; exit 1",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "hc",
        "sleep",
        "1000",
    ])?;
    env.wait_for(&bad, "{{.State.Health.Status}}", "unhealthy", 30)?;
    let log = env.inspect(&bad, "{{json .State.Health}}")?;
    ensure!(
        log.contains("broken-probe") && log.contains("\"FailingStreak\""),
        "{log}"
    );
    ensure!(env.ok(["ps"])?.contains("(unhealthy)"));
    env.ok(["rm", "-f", &good, &bad])?;
    env.assert_clean()
}

#[test]
fn restart_on_failure_restarts_exactly_n_times() -> Result<()> {
    let env = EngineEnv::new()?;
    let name = env.name("flaky");
    env.ok([
        "run",
        "-d",
        "--name",
        &name,
        "--restart",
        "on-failure:3",
        env.busybox(),
        "sh",
        "-c",
        "echo attempt; exit 1",
    ])?;
    env.wait_for(&name, "{{.State.Status}}", "exited", 60)?;
    ensure!(env.inspect(&name, "{{.RestartCount}}")? == "3");
    ensure!(env.inspect(&name, "{{.State.ExitCode}}")? == "1");
    let logs = env.ok(["logs", &name])?;
    ensure!(logs.matches("attempt").count() == 4, "{logs}");
    env.ok(["rm", &name])?;
    env.assert_clean()
}

#[test]
fn logs_tail_follow_and_timestamps() -> Result<()> {
    let env = EngineEnv::new()?;
    let name = env.name("talker");
    env.ok([
        "run",
        "-d",
        "--name",
        &name,
        env.busybox(),
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo to-stderr >&2; sleep 1; echo late",
    ])?;
    // -f returns once the container has exited, with everything it wrote.
    let out = env.run(["logs", "-f", &name])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stdout.contains("line1") && stdout.contains("late"),
        "{stdout}"
    );
    ensure!(String::from_utf8_lossy(&out.stderr).contains("to-stderr"));
    let tail = env.ok(["logs", "--tail", "1", &name])?;
    ensure!(tail.trim() == "late", "{tail:?}");
    let ts = env.ok(["logs", "-t", "--tail", "1", &name])?;
    ensure!(ts.starts_with("20") && ts.contains("Z late"), "{ts:?}");
    // docker's json-file lines; the two streams are copied independently,
    // so only each stream's own order is fixed.
    let raw = std::fs::read_to_string(env.inspect(&name, "{{.LogPath}}")?)?;
    let entries: Vec<serde_json::Value> = raw
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let first_out = entries.iter().find(|e| e["stream"] == "stdout");
    ensure!(first_out.is_some_and(|e| e["log"] == "line1\n"), "{raw}");
    ensure!(entries
        .iter()
        .all(|e| e["time"].as_str().is_some_and(|t| t.ends_with('Z'))));
    env.ok(["rm", &name])?;
    env.assert_clean()
}

#[test]
fn stop_kills_after_the_timeout_a_process_that_ignores_term() -> Result<()> {
    let env = EngineEnv::new()?;
    let name = env.name("stubborn");
    env.ok([
        "run",
        "-d",
        "--name",
        &name,
        env.busybox(),
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    ])?;
    env.ok(["stop", "-t", "1", &name])?;
    ensure!(env.inspect(&name, "{{.State.ExitCode}}")? == "137");
    // A stopped container with a restart policy stays stopped.
    let always = env.name("always");
    env.ok([
        "run",
        "-d",
        "--name",
        &always,
        "--restart",
        "always",
        env.busybox(),
        "sleep",
        "1000",
    ])?;
    env.ok(["stop", "-t", "1", &always])?;
    ensure!(env.inspect(&always, "{{.State.Status}}")? == "exited");
    env.ok(["rm", &name, &always])?;
    env.assert_clean()
}

#[test]
fn limits_user_caps_and_read_only() -> Result<()> {
    let env = EngineEnv::new()?;
    let out = env.ok(["run", "--rm", "--read-only", "--user", "65534:65534", "--cap-drop", "ALL",
        "--pids-limit", "50", env.busybox(), "sh", "-c",
        "id -u; id -g; grep CapEff /proc/self/status; touch /x 2>&1 || echo ro-ok; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"])?;
    ensure!(out.contains("65534\n65534\n"), "{out}");
    ensure!(out.contains("CapEff:\t0000000000000000"), "{out}");
    ensure!(out.contains("ro-ok"), "{out}");
    ensure!(out.contains("50"), "{out}");
    // --init: a tiny init is PID 1 and the command its child.
    let out = env.ok([
        "run",
        "--rm",
        "--init",
        env.busybox(),
        "sh",
        "-c",
        "cat /proc/1/comm; echo $$",
    ])?;
    ensure!(
        out.starts_with("docker-init\n") && !out.ends_with("\n1\n"),
        "{out:?}"
    );
    // An OOM kill shows in inspect.
    let hog = env.name("hog");
    env.run([
        "run",
        "--name",
        &hog,
        "--memory",
        "32m",
        env.busybox(),
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ])?;
    env.wait_for(&hog, "{{.State.Status}}", "exited", 60)?;
    ensure!(env.inspect(&hog, "{{.State.OOMKilled}}")? == "true");
    env.ok(["rm", &hog])?;
    env.assert_clean()
}

#[test]
fn exec_diff_cp_top_stats_and_commit() -> Result<()> {
    let env = EngineEnv::new()?;
    let name = env.name("box");
    env.ok([
        "run",
        "-d",
        "--name",
        &name,
        env.busybox(),
        "sh",
        "-c",
        "echo made > /made.txt; rm /etc/group; exec sleep 1000",
    ])?;
    env.wait_for(&name, "{{.State.Status}}", "running", 10)?;
    // The shell's changes are made before it execs sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !env.ok(["diff", &name])?.contains("A /made.txt") {
        ensure!(
            std::time::Instant::now() < deadline,
            "diff never showed /made.txt"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let diff = env.ok(["diff", &name])?;
    ensure!(
        diff.contains("D /etc/group") && diff.contains("C /etc"),
        "{diff}"
    );
    let out = env.ok([
        "exec",
        "-e",
        "X=1",
        "-w",
        "/etc",
        &name,
        "sh",
        "-c",
        "echo $X; pwd",
    ])?;
    ensure!(out == "1\n/etc\n", "{out:?}");
    let code = env
        .run(["exec", &name, "sh", "-c", "exit 7"])?
        .status
        .code();
    ensure!(code == Some(7), "exec exit code {code:?}");
    // cp both ways.
    let host = env.tmp.path().join("from-host.txt");
    std::fs::write(&host, "to-container")?;
    env.ok(["cp", &host.display().to_string(), &format!("{name}:/tmp/")])?;
    ensure!(env.ok(["exec", &name, "cat", "/tmp/from-host.txt"])? == "to-container");
    let back = env.tmp.path().join("back.txt");
    env.ok([
        "cp",
        &format!("{name}:/made.txt"),
        &back.display().to_string(),
    ])?;
    ensure!(std::fs::read_to_string(&back)? == "made\n");
    // A symlink out of the container is copied as a link, never followed.
    env.ok(["exec", &name, "ln", "-s", "/etc/shadow", "/escape"])?;
    let link = env.tmp.path().join("escape");
    env.ok([
        "cp",
        &format!("{name}:/escape"),
        &link.display().to_string(),
    ])?;
    ensure!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
    let top = env.ok(["top", &name])?;
    ensure!(top.contains("sleep 1000"), "{top}");
    let stats = env.ok(["stats", "--no-stream", &name])?;
    ensure!(
        stats.contains(&name) && stats.contains("MEM USAGE"),
        "{stats}"
    );
    let image = env.name("committed");
    env.ok(["commit", &name, &image])?;
    env.ok(["rm", "-f", &name])?;
    let out = env.ok(["run", "--rm", &image, "cat", "/made.txt"])?;
    ensure!(out == "made\n", "{out:?}");
    env.assert_clean()
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() -> Result<()> {
    let env = EngineEnv::new()?;
    let cases: [(&[&str], &str); 6] = [
        (&["run", "-d", "-p", "80:80:80:80", env.busybox()], "-p"),
        (&["run", "-d", "-v", "rel/path:/x", env.busybox()], "-v"),
        (
            &["run", "-d", "--memory", "lots", env.busybox()],
            "--memory",
        ),
        (
            &["run", "-d", "no-such-image-here", "true"],
            "no-such-image-here",
        ),
        (
            &[
                "run",
                "-d",
                "--network",
                "no-such-net",
                env.busybox(),
                "true",
            ],
            "no such network",
        ),
        (&["rm", "no-such-container"], "No such container"),
    ];
    for (args, want) in cases {
        let err = env.fails(args)?;
        ensure!(err.contains(want), "{args:?}: {err}");
    }
    env.assert_clean()
}

#[test]
fn a_killed_skiffctl_leaves_a_state_the_next_command_repairs() -> Result<()> {
    let env = EngineEnv::new()?;
    web_image(&env, "web")?;
    // Killed at different moments of `run -d -p` (creating, mounting,
    // wiring the network, starting the monitor): whatever it left, `ps -a`
    // and `rm -f` repair, and nothing stays behind.
    for (i, delay_ms) in [0u64, 20, 40, 60, 90, 130, 200].into_iter().enumerate() {
        let name = env.name(&format!("cut{i}"));
        let port = free_port()?;
        let mut child = env
            .cmd([
                "run",
                "-d",
                "-p",
                &format!("{port}:8000"),
                "--name",
                &name,
                "web",
            ])
            .spawn()?;
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill()?;
        child.wait()?;
        env.ok(["ps", "-a"])?;
        let _ = env.run(["rm", "-f", &name])?;
    }
    // A container that did start outlives its client.
    let name = env.name("outlives");
    let mut child = env
        .cmd(["run", "--name", &name, env.busybox(), "sleep", "1000"])
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while env
        .run(["inspect", "-f", "{{.State.Status}}", &name])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "running")
        .unwrap_or(true)
    {
        ensure!(std::time::Instant::now() < deadline, "never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    ensure!(env.inspect(&name, "{{.State.Status}}")? == "running");
    env.ok(["rm", "-f", &name])?;
    env.assert_clean()
}

#[test]
fn exec_and_run_with_a_terminal() -> Result<()> {
    let env = EngineEnv::new()?;
    let name = env.name("tty");
    env.ok(["run", "-d", "--name", &name, env.busybox(), "sleep", "1000"])?;
    let out = skiff_integration::pty::output_on_pty(
        env.cmd([
            "exec",
            "-it",
            &name,
            "sh",
            "-c",
            "tty; stty size; echo exec-done",
        ]),
        Duration::from_secs(30),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "exec -it: {text}");
    ensure!(
        text.contains("/dev/pts/") && text.contains("exec-done"),
        "{text:?}"
    );
    let out = skiff_integration::pty::output_on_pty(
        env.cmd([
            "run",
            "--rm",
            "-it",
            env.busybox(),
            "sh",
            "-c",
            "tty; exit 4",
        ]),
        Duration::from_secs(30),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(4),
        "run -it exit {:?}: {text}",
        out.status.code()
    );
    ensure!(text.contains("/dev/pts/"), "{text:?}");
    env.ok(["rm", "-f", &name])?;
    env.assert_clean()
}
