//! The network namespace skiff gives a container: `lo` is up in a new one
//! (as runc and crun do), so 127.0.0.1 works with no other network; a
//! namespace joined by path is left as it is.

use std::process::{Child, Command, Stdio};

use anyhow::{ensure, Context, Result};
use serde_json::json;
use skiff_integration::Env;

#[test]
fn loopback_is_up_in_a_new_network_namespace() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    // A server on 127.0.0.1 and a client of it, as a health check or a
    // database init would do in a `--network none` container.
    let out = env.sh(
        "lo",
        "ip link show lo | head -1; \
         (echo hello-lo | nc -l -p 7777 127.0.0.1 &) ; \
         for i in $(seq 50); do nc 127.0.0.1 7777 </dev/null && break; sleep 0.1; done",
    )?;
    ensure!(out.contains("UP"), "lo is not up: {out}");
    ensure!(out.contains("hello-lo"), "nothing reached 127.0.0.1: {out}");
    Ok(())
}

/// A process holding a network namespace of its own, killed on drop.
struct NetnsHolder(Child);

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_joined_network_namespace_is_left_as_it_is() -> Result<()> {
    let holder = NetnsHolder(
        Command::new("unshare")
            .args(["--net", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .context("unshare --net")?,
    );
    let ns = format!("/proc/{}/ns/net", holder.0.id());
    // unshare has made the namespace once it has exec'd sleep.
    skiff_integration::wait_until(10, "the namespace holder", || {
        std::fs::read_link(&ns).ok() != std::fs::read_link("/proc/self/ns/net").ok()
    })?;
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(|s| {
        if let Some(list) = s["linux"]["namespaces"].as_array_mut() {
            for n in list.iter_mut() {
                if n["type"] == "network" {
                    *n = json!({"type": "network", "path": ns});
                }
            }
        }
    })?;
    let out = env.sh("joined", "ip link show lo | head -1")?;
    ensure!(
        !out.contains(",UP"),
        "lo of a joined namespace was brought up: {out}"
    );
    Ok(())
}
