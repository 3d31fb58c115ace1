//! `skiff checkpoint` / `skiff restore` without a usable CRIU: clear errors,
//! and the container untouched. (A real checkpoint needs a CRIU that works
//! on the host kernel, which CI cannot count on.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{ensure, Result};
use skiff_integration::Env;

/// A `criu` that fails every request, in its own directory.
fn broken_criu(env: &Env) -> Result<String> {
    let dir = env.tmp.path().join("criu-bin");
    std::fs::create_dir_all(&dir)?;
    let criu = dir.join("criu");
    std::fs::write(&criu, "#!/bin/sh\necho 'fake criu' >&2\nexit 1\n")?;
    std::fs::set_permissions(&criu, std::fs::Permissions::from_mode(0o755))?;
    Ok(criu.display().to_string())
}

#[test]
fn checkpoint_without_criu_fails_and_leaves_the_container_running() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("ckpt");
    env.run_detached(&id)?;
    let images = env.tmp.path().join("images").display().to_string();

    let err = env.fails([
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        &images,
        &id,
    ])?;
    ensure!(
        err.contains("checkpoint/restore not supported: criu not found"),
        "{err}"
    );

    // The default "criu", looked up on a PATH that has none.
    let out = env
        .cmd(["checkpoint", "--image-path", &images, &id])
        .env("PATH", env.tmp.path().join("empty-path"))
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "checkpoint succeeded without criu");
    ensure!(err.contains("criu not found"), "{err}");

    ensure!(!PathBuf::from(&images).exists(), "image dir was created");
    ensure!(env.status(&id)? == "running");
    Ok(())
}

#[test]
fn failing_criu_leaves_the_container_running() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("ckfail");
    env.run_detached(&id)?;
    let criu = broken_criu(&env)?;
    let images = env.tmp.path().join("images").display().to_string();
    let err = env.fails(["--criu", &criu, "checkpoint", "--image-path", &images, &id])?;
    ensure!(err.contains("checkpoint of container"), "{err}");
    ensure!(env.status(&id)? == "running");
    let pid = env.pid(&id)?;
    ensure!(skiff_integration::pid_alive(pid), "init {pid} died");

    let err = env.fails(["--criu", &criu, "checkpoint", "--pre-dump", &id])?;
    ensure!(err.contains("--pre-dump is not supported"), "{err}");
    ensure!(env.status(&id)? == "running");
    Ok(())
}

#[test]
fn checkpoint_refuses_a_created_container() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("ckcreated");
    env.create(&id)?;
    let criu = broken_criu(&env)?;
    let err = env.fails(["--criu", &criu, "checkpoint", &id])?;
    ensure!(
        err.contains("cannot be checkpointed in created state"),
        "{err}"
    );
    ensure!(env.status(&id)? == "created");
    Ok(())
}

#[test]
fn restore_fails_clearly_and_creates_nothing() -> Result<()> {
    let env = Env::new(&["sleep", "1000"])?;
    let _g = env.guard();
    let id = env.uid("restore");
    let bundle = env.bundle.display().to_string();
    let images = env.tmp.path().join("images").display().to_string();

    let err = env.fails([
        "--criu",
        "/nonexistent/criu",
        "restore",
        "--bundle",
        &bundle,
        "--image-path",
        &images,
        "--detach",
        &id,
    ])?;
    ensure!(
        err.contains("checkpoint/restore not supported: criu not found"),
        "{err}"
    );

    let criu = broken_criu(&env)?;
    let err = env.fails(["--criu", &criu, "restore", "--bundle", &bundle, &id])?;
    ensure!(err.contains("restore is not supported"), "{err}");

    // No state directory, lock file or cgroup named after it.
    env.assert_clean(&id, None)
}
