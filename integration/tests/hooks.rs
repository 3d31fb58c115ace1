//! OCI hooks: every kind runs at its step with the container's state on
//! stdin; failures of poststart and poststop hooks are warnings, failures of
//! the create-time hooks fail create and leave nothing behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use skiff_integration::{output_within, Env};

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook running `sh -c SCRIPT`.
fn sh_hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// A hook that saves its stdin as `<dir>/<kind>.json`; startContainer runs
/// after pivot_root and writes through the /hooks bind mount instead.
fn save_hook(out: &Path, kind: &str) -> Value {
    let dir = if kind == "startContainer" {
        PathBuf::from("/hooks")
    } else {
        out.to_path_buf()
    };
    sh_hook(&format!("cat > {}/{kind}.json", dir.display()))
}

/// An empty directory `<tmp>/hooks` for what the hooks write.
fn hooks_dir(env: &Env) -> Result<PathBuf> {
    let out = env.tmp.path().join("hooks");
    fs::create_dir(&out)?;
    Ok(out)
}

/// A bundle whose every hook records its stdin in `<tmp>/hooks`.
fn env_with_hooks(args: &[&str]) -> Result<(Env, PathBuf)> {
    let env = Env::new(args)?;
    let out = hooks_dir(&env)?;
    let hooks: serde_json::Map<String, Value> = KINDS
        .iter()
        .map(|k| (k.to_string(), json!([save_hook(&out, k)])))
        .collect();
    env.edit_spec(|s| {
        s["hooks"] = Value::Object(hooks);
        s["annotations"] = json!({"org.skiff.test": "hooks", "com.example/x": "1"});
        if let Some(m) = s["mounts"].as_array_mut() {
            m.push(json!({"destination": "/hooks", "type": "bind",
                          "source": out, "options": ["rbind", "rw"]}));
        }
    })?;
    Ok((env, out))
}

fn read_state(out: &Path, kind: &str) -> Result<Value> {
    let p = out.join(format!("{kind}.json"));
    let text = fs::read_to_string(&p).with_context(|| format!("{kind} hook did not run"))?;
    serde_json::from_str(&text).with_context(|| format!("{kind} hook got {text:?}"))
}

fn ran(out: &Path, kind: &str) -> bool {
    out.join(format!("{kind}.json")).exists()
}

#[test]
fn every_hook_gets_the_state_at_its_step() -> Result<()> {
    let (env, out) = env_with_hooks(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("hooks");
    let bundle = fs::canonicalize(&env.bundle)?;

    env.create(&id)?;
    let pid = env.pid(&id)?;
    for k in ["prestart", "createRuntime", "createContainer"] {
        ensure!(ran(&out, k), "{k} did not run during create");
    }
    for k in ["startContainer", "poststart", "poststop"] {
        ensure!(!ran(&out, k), "{k} ran during create");
    }
    // Annotations from config.json are part of the state.
    let st = env.state(&id)?;
    ensure!(
        st["annotations"] == json!({"org.skiff.test": "hooks", "com.example/x": "1"}),
        "{st}"
    );

    env.ok(["start", &id])?;
    ensure!(ran(&out, "startContainer") && ran(&out, "poststart"));
    ensure!(!ran(&out, "poststop"));
    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    ensure!(!ran(&out, "poststop"), "poststop ran before delete");
    env.ok(["delete", &id])?;

    for k in KINDS {
        let s = read_state(&out, k)?;
        ensure!(s["id"] == json!(id), "{k}: {s}");
        ensure!(s["bundle"] == json!(bundle), "{k}: {s}");
        ensure!(s["ociVersion"].is_string(), "{k}: {s}");
        ensure!(
            s["annotations"]["org.skiff.test"] == "hooks",
            "{k}: no annotations: {s}"
        );
        // runc's values: createContainer and startContainer run in the
        // container's init and see its pid as it sees itself (1 in a new
        // pid namespace); startContainer runs once start was asked for.
        let (want_status, want_pid) = match k {
            "prestart" | "createRuntime" => ("creating", json!(pid)),
            "createContainer" => ("creating", json!(1)),
            "startContainer" => ("created", json!(1)),
            "poststart" => ("running", json!(pid)),
            _ => ("stopped", Value::Null),
        };
        ensure!(
            s["status"] == want_status,
            "{k}: status {}, expected {want_status}",
            s["status"]
        );
        ensure!(
            s["pid"] == want_pid,
            "{k}: pid {}, expected {want_pid}",
            s["pid"]
        );
    }
    env.assert_clean(&id, None)
}

#[test]
fn poststart_runs_on_start_not_create_and_failure_is_a_warning() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let out = hooks_dir(&env)?;
    let mark = out.join("second");
    env.edit_spec(|s| {
        s["hooks"] = json!({"poststart": [
            sh_hook("echo poststart-broke >&2; exit 3"),
            sh_hook(&format!("cat > {}", mark.display())),
        ]});
    })?;
    let id = env.uid("pstart");
    env.create(&id)?;
    ensure!(!mark.exists(), "poststart ran during create");
    let out = env.skiff(["start", &id])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "start failed: {err}");
    ensure!(err.contains("poststart"), "no warning: {err:?}");
    ensure!(mark.exists(), "the hook after the failing one did not run");
    ensure!(env.status(&id)? == "running");
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, None)
}

#[test]
fn poststop_failure_is_a_warning_and_delete_continues() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let out = hooks_dir(&env)?;
    let mark = out.join("second");
    let cg = env.cgroups_path("pstop");
    env.edit_spec(|s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["hooks"] = json!({"poststop": [
            sh_hook("exit 1"),
            {"path": "/no/such/hook"},
            sh_hook(&format!("cat > {}", mark.display())),
        ]});
    })?;
    let id = env.uid("pstop");
    env.create(&id)?;
    env.ok(["start", &id])?;
    env.wait_status(&id, "stopped")?;
    let res = env.skiff(["delete", &id])?;
    let err = String::from_utf8_lossy(&res.stderr);
    ensure!(res.status.success(), "delete failed: {err}");
    ensure!(err.contains("poststop"), "no warning: {err:?}");
    let s = read_state(&out, "second")
        .or_else(|_| serde_json::from_str(&fs::read_to_string(&mark)?).context("bad state"))?;
    ensure!(s["status"] == "stopped", "{s}");
    env.assert_clean(&id, Some(&cg))?;

    // Also when a running container is force-deleted, and from `run`.
    fs::remove_file(&mark)?;
    env.set_args(&["sleep", "1000"])?;
    env.run_detached(&id)?;
    let res = env.skiff(["delete", "--force", &id])?;
    ensure!(res.status.success());
    ensure!(mark.exists(), "poststop did not run on delete --force");
    env.assert_clean(&id, Some(&cg))?;

    fs::remove_file(&mark)?;
    env.set_args(&["true"])?;
    env.run_code(&id, 0)?;
    ensure!(mark.exists(), "poststop did not run after run");
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn failing_create_hooks_fail_create_and_clean_up() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let cg = env.cgroups_path("chook");
    for kind in ["prestart", "createRuntime", "createContainer"] {
        env.edit_spec(|s| {
            s["linux"]["cgroupsPath"] = json!(cg);
            s["hooks"] = json!({ kind: [sh_hook("exit 5")] });
        })?;
        let id = env.uid(kind);
        env.track(&id);
        let mut c = env.cmd(["run", "--detach", "--bundle"]);
        c.arg(&env.bundle).arg(&id);
        let out = output_within(c, Duration::from_secs(30))?;
        ensure!(!out.status.success(), "a failing {kind} hook was ignored");
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(err.contains("hook"), "{kind}: {err}");
        env.assert_clean(&id, Some(&cg))?;
    }
    // startContainer runs after `start` returned (as with runc): the process
    // must not run and the container ends up stopped.
    env.edit_spec(|s| s["hooks"] = json!({"startContainer": [sh_hook("exit 5")]}))?;
    let id = env.uid("startContainer");
    env.create(&id)?;
    env.ok(["start", &id])?;
    env.wait_status(&id, "stopped")?;
    env.ok(["delete", &id])?;
    env.assert_clean(&id, Some(&cg))
}

#[test]
fn hooks_that_ignore_stdin_are_fine() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let out = hooks_dir(&env)?;
    let mark = out.join("after");
    // 200 KiB of annotations fill the pipe, so writing the state to a hook
    // that exits at once gets EPIPE.
    let big = "x".repeat(200 * 1024);
    let quit = json!({"path": "/bin/true", "args": ["true"]});
    env.edit_spec(|s| {
        s["annotations"] = json!({ "big": big });
        s["hooks"] = json!({
            "prestart": [quit.clone()],
            "createRuntime": [quit.clone()],
            "poststart": [quit.clone()],
            "poststop": [quit.clone(), sh_hook(&format!("cat > {}", mark.display()))],
        });
    })?;
    let id = env.uid("epipe");
    env.run_code(&id, 0)?;
    ensure!(mark.exists(), "poststop after the EPIPE hook did not run");
    let st: Value = serde_json::from_str(&fs::read_to_string(&mark)?)?;
    ensure!(st["annotations"]["big"].as_str().map(str::len) == Some(big.len()));
    env.assert_clean(&id, None)
}

#[test]
fn hook_env_args_and_timeout() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let out = hooks_dir(&env)?;
    let file = out.join("env");
    env.edit_spec(|s| {
        s["hooks"] = json!({
            "prestart": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "echo \"$0 $HOOKVAR\" > \"$1\"", "arg1", &file],
                "env": ["HOOKVAR=fromspec"]
            }],
            "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}],
        });
    })?;
    let id = env.uid("henv");
    let t = std::time::Instant::now();
    let res = env.run_fg(&id, &[], Duration::from_secs(30))?;
    ensure!(!res.status.success(), "a hook past its timeout was ignored");
    ensure!(
        t.elapsed() < Duration::from_secs(15),
        "timeout not enforced"
    );
    ensure!(fs::read_to_string(&file)? == "arg1 fromspec\n");
    env.assert_clean(&id, None)
}
