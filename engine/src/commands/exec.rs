//! `exec`: a new process in a running container, through its monitor, with
//! FIFOs for its stdio (as ctr does).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use crate::container::status;
use crate::engine::Engine;
use crate::monitor::Stdio3;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// Removes the session's FIFOs however exec ends.
struct Fifos(PathBuf);

impl Drop for Fifos {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_env(env: &mut Vec<Value>, entry: &str) {
    let key = entry.split_once('=').map_or(entry, |(k, _)| k);
    env.retain(|e| {
        e.as_str()
            .is_none_or(|s| s.split_once('=').map_or(s, |(k, _)| k) != key)
    });
    env.push(Value::String(entry.to_owned()));
}

pub fn run(engine: &Engine, a: ExecArgs) -> Result<i32> {
    let c = engine.containers.find(&a.container)?;
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    match st.status {
        skiff_specs::monitor::Status::Running => {}
        skiff_specs::monitor::Status::Paused => bail!(
            "Container {} is paused, unpause the container before exec",
            c.id
        ),
        _ => bail!("Container {} is not running", c.id),
    }
    let bundle = dir.bundle();
    let spec: Value = serde_json::from_slice(
        &std::fs::read(bundle.join("config.json")).context("the container's spec is missing")?,
    )?;
    let mut process = spec["process"].clone();
    process["args"] = serde_json::json!(a.command);
    process["terminal"] = Value::Bool(a.tty);
    let mut env = process["env"].as_array().cloned().unwrap_or_default();
    for e in &a.env {
        if e.contains('=') {
            set_env(&mut env, e);
        } else if let Ok(v) = std::env::var(e) {
            set_env(&mut env, &format!("{e}={v}"));
        }
    }
    process["env"] = Value::Array(env);
    if let Some(w) = &a.workdir {
        process["cwd"] = Value::String(w.clone());
    }
    if let Some(u) = &a.user {
        let rootfs = dir.rootfs();
        let resolved =
            skiff_specs::user::resolve_user(&rootfs, u).with_context(|| format!("--user {u}"))?;
        process["user"] = serde_json::json!({
            "uid": resolved.uid, "gid": resolved.gid, "additionalGids": resolved.additional_gids
        });
    }
    if a.privileged {
        let all = crate::spec::caps::ALL;
        for set in ["bounding", "effective", "permitted"] {
            process["capabilities"][set] = serde_json::json!(all.to_vec());
        }
    }

    let exec_id = format!("exec-{}", &crate::ids::new_id()?[..12]);
    let fifo_dir = dir.path().join(&exec_id);
    std::fs::create_dir_all(&fifo_dir)?;
    let _fifos = Fifos(fifo_dir.clone());
    let make = |name: &str| -> Result<String> {
        let p = fifo_dir.join(name);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
        Ok(p.display().to_string())
    };
    let detach = a.detach;
    let stdio = Stdio3 {
        stdin: if a.interactive && !detach {
            make("stdin")?
        } else {
            String::new()
        },
        stdout: if detach {
            String::new()
        } else {
            make("stdout")?
        },
        stderr: if detach || a.tty {
            String::new()
        } else {
            make("stderr")?
        },
        terminal: a.tty,
    };
    // Our readers exist before the monitor opens the FIFOs for writing.
    let open_reader = |p: &str| -> Result<Option<File>> {
        if p.is_empty() {
            return Ok(None);
        }
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p)?;
        use std::os::fd::AsRawFd;
        let flags = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.remove(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(Some(f))
    };
    let out = open_reader(&stdio.stdout)?;
    let err = open_reader(&stdio.stderr)?;

    let m = engine.monitor.connect(&bundle, &c.id)?;
    m.exec(&exec_id, &process, &stdio)?;
    let _raw = if a.tty && a.interactive {
        crate::terminal::RawMode::enter()
    } else {
        None
    };
    if let Err(e) = m.start(&exec_id) {
        let _ = m.delete(&exec_id);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    if a.tty {
        if let Some((w, h)) = crate::terminal::size(std::io::stdout().as_fd()) {
            let _ = m.resize(&exec_id, w, h);
        }
    }
    let copiers = [
        out.map(|f| copy_thread(f, false)),
        err.map(|f| copy_thread(f, true)),
    ];
    if !stdio.stdin.is_empty() {
        forward_input(
            Path::new(&stdio.stdin),
            &engine.monitor,
            &bundle,
            &c.id,
            &exec_id,
            a.tty,
        )?;
    }
    let status = m.wait(&exec_id)?;
    for t in copiers.into_iter().flatten() {
        let _ = t.join();
    }
    let _ = m.delete(&exec_id);
    Ok(status as i32)
}

fn copy_thread(mut from: File, stderr: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 32 * 1024];
        loop {
            match std::io::Read::read(&mut from, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let written = if stderr {
                        std::io::stderr()
                            .write_all(&buf[..n])
                            .and_then(|()| std::io::stderr().flush())
                    } else {
                        std::io::stdout()
                            .write_all(&buf[..n])
                            .and_then(|()| std::io::stdout().flush())
                    };
                    if written.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

fn forward_input(
    fifo: &Path,
    setup: &crate::monitor::MonitorSetup,
    bundle: &Path,
    id: &str,
    exec_id: &str,
    tty: bool,
) -> Result<()> {
    let mut to = OpenOptions::new().write(true).open(fifo)?;
    let (setup, bundle, id, exec_id) = (
        setup.clone(),
        bundle.to_path_buf(),
        id.to_owned(),
        exec_id.to_owned(),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to);
        drop(to);
        if !tty {
            if let Ok(m) = setup.connect(&bundle, &id) {
                let _ = m.close_stdin(&exec_id);
            }
        }
    });
    Ok(())
}
