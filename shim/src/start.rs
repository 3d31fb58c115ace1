//! `start`: in the bundle directory, start a shim server for the container
//! (or find the one already serving its pod) and print its address.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use skiff_specs::monitor::GROUP_ANNOTATION;

use crate::flags::Flags;
use crate::socket;

/// CRI's annotation naming the pod sandbox: one shim serves the whole pod.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub fn run(flags: &Flags) -> Result<()> {
    let group = group().unwrap_or_else(|| flags.id.clone());
    let path = socket::socket_path(&flags.address, &flags.namespace, &group);
    let address = socket::address_of(&path);
    if let Some(listener) = socket::bind(&path)? {
        if let Err(e) = spawn_server(flags, &address, listener.as_raw_fd()) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    }
    // containerd 1.6 writes this itself too; a restarted containerd reads it.
    fs::write("address", &address).context("cannot write the address file in the bundle")?;
    print!("{}", reply(&address, max_shim_version()));
    Ok(())
}

/// The shim server: this binary without an action, the listener on fd 3,
/// in its own session so it outlives containerd.
fn spawn_server(flags: &Flags, address: &str, listener: i32) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the shim binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["-namespace", &flags.namespace, "-id", &flags.id])
        .args(["-address", &flags.address])
        .args(["-publish-binary", &flags.publish_binary])
        .args(["-socket", address]);
    if flags.debug {
        cmd.arg("-debug");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls async-signal-safe functions (dup2, fcntl,
    // setsid) on a descriptor that stays open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if listener == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(listener, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("cannot start the shim server")?;
    fs::write("shim.pid", child.id().to_string()).context("cannot write shim.pid in the bundle")?;
    Ok(())
}

/// containerd >= 2.0 sets MAX_SHIM_VERSION=3 (1.7 sets 2, 1.6 nothing).
fn max_shim_version() -> u32 {
    std::env::var("MAX_SHIM_VERSION")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2)
}

/// A plain address for task API v2 callers; version 3 bootstrap JSON for v3 ones.
fn reply(address: &str, max_version: u32) -> String {
    if max_version >= 3 {
        serde_json::json!({"version": 3, "address": address, "protocol": "ttrpc"}).to_string()
    } else {
        address.to_string()
    }
}

/// The group of containers sharing a shim, from the bundle's config.json
/// annotations: CRI's pod sandbox id, else the engine's monitor group.
fn group() -> Option<String> {
    let text = fs::read_to_string("config.json").ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    group_of(spec.get("annotations")?)
}

fn group_of(annotations: &serde_json::Value) -> Option<String> {
    [SANDBOX_ID, GROUP_ANNOTATION]
        .iter()
        .filter_map(|key| annotations.get(key)?.as_str())
        .find(|id| !id.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_pod_then_by_monitor_group() {
        let a = serde_json::json!({
            SANDBOX_ID: "pod",
            GROUP_ANNOTATION: "engine",
        });
        assert_eq!(group_of(&a).as_deref(), Some("pod"));
        let a = serde_json::json!({ SANDBOX_ID: "", GROUP_ANNOTATION: "engine" });
        assert_eq!(group_of(&a).as_deref(), Some("engine"));
        assert_eq!(group_of(&serde_json::json!({ "x": "y" })), None);
    }

    #[test]
    fn reply_forms() -> Result<()> {
        assert_eq!(reply("unix:///s", 2), "unix:///s");
        let v: serde_json::Value = serde_json::from_str(&reply("unix:///s", 3))?;
        assert_eq!(v["version"], 3);
        assert_eq!(v["address"], "unix:///s");
        assert_eq!(v["protocol"], "ttrpc");
        Ok(())
    }
}
