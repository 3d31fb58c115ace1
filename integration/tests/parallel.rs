//! Many commands at once under one --root: distinct containers do not get in
//! each other's way, and commands on one id are serialised by its lock.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use serde_json::json;
use skiff_integration::{output_within, Env};

const N: usize = 20;

/// Runs `f(i)` for i in 0..n on n threads; every error is reported.
fn on_threads(n: usize, f: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let errors: Vec<String> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || (i, f(i)))).collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok((_, Ok(()))) => None,
                Ok((i, Err(e))) => Some(format!("thread {i}: {e:#}")),
                Err(_) => Some("a thread panicked".to_owned()),
            })
            .collect()
    });
    if !errors.is_empty() {
        bail!("{} of {n} failed:\n{}", errors.len(), errors.join("\n"));
    }
    Ok(())
}

/// The root holds nothing but the (empty) lock directory.
fn root_is_empty(env: &Env) -> Result<()> {
    let mut left: Vec<String> = std::fs::read_dir(&env.root)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ":locks")
        .collect();
    left.extend(
        std::fs::read_dir(env.root.join(":locks"))?
            .flatten()
            .map(|e| format!(":locks/{}", e.file_name().to_string_lossy())),
    );
    ensure!(left.is_empty(), "root still holds {left:?}");
    Ok(())
}

#[test]
fn parallel_foreground_runs() -> Result<()> {
    let env = Env::new(&["sh", "-c", "echo $((6 * 7))"])?;
    let _g = env.guard();
    on_threads(N, |i| {
        let id = env.uid(&format!("p{i}"));
        let out = env.run_fg(&id, &[], Duration::from_secs(60))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && stdout == "42\n",
            "{:?} {stdout:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        env.assert_clean(&id, None)
    })?;
    root_is_empty(&env)?;
    ensure!(env.ok(["list", "-q"])?.is_empty());
    Ok(())
}

#[test]
fn parallel_lifecycles_with_own_cgroups() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let cg = |i: usize| env.cgroups_path(&format!("l{i}"));
    on_threads(N, |i| {
        let id = env.uid(&format!("l{i}"));
        // Each thread writes its own bundle: cgroupsPath differs per container.
        let bundle = env.tmp.path().join(format!("bundle{i}"));
        std::fs::create_dir(&bundle)?;
        let mut spec = env.spec()?;
        spec["root"]["path"] = json!(env.bundle.join("rootfs"));
        spec["linux"]["cgroupsPath"] = json!(cg(i));
        std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?)?;
        env.track(&id);
        let mut c = env.cmd(["create", "--bundle"]);
        c.arg(&bundle).arg(&id);
        let out = output_within(c, Duration::from_secs(60))?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.ok(["start", &id])?;
        ensure!(env.status(&id)? == "running");
        if i % 2 == 0 {
            env.ok(["kill", &id, "KILL"])?;
            env.wait_status(&id, "stopped")?;
            env.ok(["delete", &id])?;
        } else {
            env.ok(["delete", "--force", &id])?;
        }
        env.assert_clean(&id, Some(&cg(i)))
    })?;
    root_is_empty(&env)
}

#[test]
fn racing_creates_of_one_id() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("same");
    env.track(&id);
    let wins = std::sync::atomic::AtomicUsize::new(0);
    on_threads(8, |_| {
        let mut c = env.cmd(["create", "--bundle"]);
        c.arg(&env.bundle).arg(&id);
        let out = output_within(c, Duration::from_secs(60))?;
        if out.status.success() {
            wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            ensure!(err.contains("exists"), "{err}");
        }
        Ok(())
    })?;
    ensure!(wins.into_inner() == 1, "not exactly one create won");
    ensure!(env.status(&id)? == "created");

    // state, kill and delete --force racing on one container.
    env.ok(["start", &id])?;
    on_threads(8, |i| {
        let out = match i % 3 {
            0 => env.skiff(["delete", "--force", &id])?,
            1 => env.skiff(["kill", &id, "KILL"])?,
            _ => env.skiff(["state", &id])?,
        };
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success() || err.contains("does not exist") || err.contains("not running"),
            "{err}"
        );
        Ok(())
    })?;
    env.ok(["delete", "--force", &id])?;
    env.assert_clean(&id, None)?;
    root_is_empty(&env)
}
