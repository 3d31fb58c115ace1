//! `skiffctl compose` end to end: a docker guide's application (a web
//! service built from a Dockerfile, a database with a health check and a
//! named volume, a cache, a worker on the web image), on a private engine.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use skiff_integration::engine::EngineEnv;

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn http_get(port: u16, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn http_eventually(port: u16, path: &str, want: &str) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match http_get(port, path) {
            Ok(body) if body.contains(want) => return Ok(body),
            other => {
                if std::time::Instant::now() > deadline {
                    bail!("GET {path} on {port} never had {want:?}: {other:?}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The project directory: a compose file and the web service's sources.
fn write_project(dir: &Path, base: &str, port: u16, greeting: &str) -> Result<()> {
    fs::create_dir_all(dir.join("web"))?;
    fs::create_dir_all(dir.join("db"))?;
    fs::write(
        dir.join("web/Dockerfile"),
        format!(
            "FROM {base}\nCOPY app.cgi /www/cgi-bin/app\nRUN chmod 755 /www/cgi-bin/app\n\
             EXPOSE 8000\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n"
        ),
    )?;
    // The page proves web reached db and cache by their service names.
    fs::write(
        dir.join("web/app.cgi"),
        format!(
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"{greeting}\"\n\
             for svc in db cache; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $svc 8000 | tail -1; done\n"
        ),
    )?;
    fs::write(
        dir.join("db/Dockerfile"),
        format!(
            "FROM {base}\nHEALTHCHECK --interval=200ms --timeout=2s --start-period=20s --retries=3 CMD test -f /tmp/ready\n\
             CMD [\"sh\", \"-c\", \"mkdir -p /data && (test -f /data/index.html || echo db-${{DB_NAME}} > /data/index.html); \
             sleep 1; touch /tmp/ready; exec httpd -f -p 8000 -h /data\"]\n"
        ),
    )?;
    fs::write(
        dir.join(".env"),
        "DB_NAME=primary\n# a comment\nexport CACHE_TEXT=\"cache-ok\"\n",
    )?;
    fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  web:
    build: ./web
    ports:
      - "{port}:8000"
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
  worker:
    image: guide-web
    build: ./web
    command: ["sh", "-c", "while true; do sleep 1; done"]
    stop_signal: SIGKILL
  db:
    build: ./db
    environment:
      DB_NAME: ${{DB_NAME}}
    volumes:
      - dbdata:/data
  cache:
    image: {base}
    command: ["sh", "-c", "mkdir -p /c && echo ${{CACHE_TEXT:-missing}} > /c/index.html && exec httpd -f -p 8000 -h /c"]
    deploy:
      resources:
        limits:
          memory: 64m
          pids: 50
volumes:
  dbdata:
"#
        ),
    )?;
    Ok(())
}

fn ids(env: &EngineEnv, dir: &Path, project: &str) -> Result<serde_json::Value> {
    let out = env.ok([
        "compose",
        "-f",
        &dir.join("compose.yaml").display().to_string(),
        "-p",
        project,
        "ps",
        "-a",
        "--format",
        "json",
    ])?;
    let rows: serde_json::Value = serde_json::from_str(&out)?;
    let mut map = serde_json::Map::new();
    for r in rows.as_array().into_iter().flatten() {
        map.insert(
            r["Name"].as_str().unwrap_or_default().to_owned(),
            r["ID"].clone(),
        );
    }
    Ok(serde_json::Value::Object(map))
}

#[test]
fn the_guides_application() -> Result<()> {
    let env = EngineEnv::new()?;
    let dir = env.tmp.path().join("guide");
    let port = free_port()?;
    write_project(&dir, env.busybox(), port, "hello v1")?;
    let project = env.name("guide");
    let file = dir.join("compose.yaml").display().to_string();
    let compose = |args: &[&str]| -> Result<String> {
        let mut all = vec!["compose", "-f", &file, "-p", &project];
        all.extend_from_slice(args);
        env.ok(all)
    };

    compose(&["up", "-d"])?;
    let body = http_eventually(port, "/cgi-bin/app", "db-primary")?;
    ensure!(
        body.contains("hello v1") && body.contains("cache-ok"),
        "{body}"
    );
    // db was healthy before web started.
    let db = format!("{project}-db-1");
    let web = format!("{project}-web-1");
    let db_healthy = env.inspect(&db, "{{json .State.Health.Log}}")?;
    let first_ok: Vec<serde_json::Value> = serde_json::from_str(&db_healthy)?;
    let healthy_at = first_ok
        .iter()
        .find(|r| r["ExitCode"] == 0)
        .and_then(|r| r["End"].as_str())
        .context("db has no successful probe")?
        .to_owned();
    let web_started = env.inspect(&web, "{{.State.StartedAt}}")?;
    ensure!(
        web_started > healthy_at,
        "web started {web_started}, db healthy {healthy_at}"
    );
    // compose's names and labels; limits in the cache's cgroup.
    ensure!(env
        .inspect(&web, "{{json .Config.Labels}}")?
        .contains("com.docker.compose.config-hash"));
    let cache = format!("{project}-cache-1");
    let limit = env.ok(["exec", &cache, "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"])?;
    ensure!(limit.trim() == (64u64 << 20).to_string(), "{limit}");
    let logs = compose(&["logs", "db"])?;
    let _ = logs;
    let out = compose(&["exec", "-T", "web", "cat", "/www/cgi-bin/app"])?;
    ensure!(out.contains("hello v1"), "{out}");

    // A changed source: only web is recreated.
    let before = ids(&env, &dir, &project)?;
    write_project(&dir, env.busybox(), port, "hello v2")?;
    compose(&["up", "-d", "--build"])?;
    http_eventually(port, "/cgi-bin/app", "hello v2")?;
    let after = ids(&env, &dir, &project)?;
    ensure!(before[&web] != after[&web], "web was not recreated");
    ensure!(before[&db] == after[&db], "db was recreated");
    ensure!(before[&cache] == after[&cache], "cache was recreated");

    // down keeps the volume; the data is there at the next up; down -v drops it.
    env.ok(["exec", &db, "sh", "-c", "echo db-kept > /data/index.html"])?;
    compose(&["down"])?;
    ensure!(
        env.ok(["ps", "-aq"])?.trim().is_empty(),
        "containers left after down"
    );
    compose(&["up", "-d"])?;
    http_eventually(port, "/cgi-bin/app", "db-kept")?;
    compose(&["down", "-v"])?;
    ensure!(
        env.ok(["volume", "ls", "-q"])?.trim().is_empty(),
        "volume left after down -v"
    );
    env.assert_clean()
}

#[test]
fn scale_migrations_and_failing_dependencies() -> Result<()> {
    let env = EngineEnv::new()?;
    let dir = env.tmp.path().join("jobs");
    fs::create_dir_all(&dir)?;
    let base = env.busybox();
    fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  migrate:
    image: {base}
    command: ["sh", "-c", "echo migrated"]
  app:
    image: {base}
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    depends_on:
      migrate:
        condition: service_completed_successfully
  worker:
    image: {base}
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
"#
        ),
    )?;
    let project = env.name("jobs");
    let file = dir.join("compose.yaml").display().to_string();
    env.ok([
        "compose", "-f", &file, "-p", &project, "up", "-d", "--scale", "worker=3",
    ])?;
    let ps = env.ok(["ps", "--format", "{{.Names}}"])?;
    for n in 1..=3 {
        ensure!(ps.contains(&format!("{project}-worker-{n}")), "{ps}");
    }
    ensure!(ps.contains(&format!("{project}-app-1")), "{ps}");
    let logs = env.ok(["compose", "-f", &file, "-p", &project, "logs", "migrate"])?;
    ensure!(logs.contains("migrated"), "{logs}");
    env.ok(["compose", "-f", &file, "-p", &project, "down"])?;

    // A dependency that turns unhealthy fails `up` with its name, quickly.
    fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  sick:
    image: {base}
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "false"]
      interval: 200ms
      retries: 2
  app:
    image: {base}
    command: ["true"]
    depends_on:
      sick:
        condition: service_healthy
"#
        ),
    )?;
    let t0 = std::time::Instant::now();
    let out = env.run(["compose", "-f", &file, "-p", &project, "up", "-d"])?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("unhealthy"), "{err}");
    ensure!(
        t0.elapsed() < Duration::from_secs(60),
        "up took {:?}",
        t0.elapsed()
    );
    env.ok(["compose", "-f", &file, "-p", &project, "down"])?;

    // An invalid file: the error names the file, service and field.
    fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: x\n    ports:\n      - \"80:80:80:80\"\n",
    )?;
    let err = env.fails(["compose", "-f", &file, "config"])?;
    ensure!(
        err.contains("compose.yaml") && err.contains("services.web.ports[0]"),
        "{err}"
    );
    env.assert_clean()
}
