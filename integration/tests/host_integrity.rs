//! skiff never changes the host outside what it creates.
//!
//! Each case runs containers whose specs share something with the host (no
//! mount, pid, network, ipc or uts namespace, shared rootfs propagation,
//! host-path binds, hooks): a foreground `run`, then create, start, exec,
//! kill and delete, and a created container deleted unstarted. Before and
//! after, the host is read: the mount table (every mount's flags and
//! propagation), the device nodes under /dev, `lo` and the other interfaces,
//! the /proc/sys values a container could write, the hostname.
//!
//! The test thread first enters a private mount namespace of its own, with
//! every mount made shared again inside it (as on a systemd host), so a
//! runtime that remounts or re-propagates what it should not damages only
//! that copy, and its mount table can be compared exactly: other tests'
//! mounts do not show up in it. The real host's system mounts (/, /proc,
//! /sys, cgroups, /dev) are read through /proc/1 and compared too.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use serde_json::{json, Value};
use skiff_integration::Env;

/// Moves the calling thread (and what it spawns) into a new mount namespace
/// whose mounts receive nothing from the host, then makes them shared again
/// inside it, so propagation changes show.
fn enter_private_mount_namespace() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .context("making / private")?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SHARED, none)
        .context("making / shared inside the namespace")?;
    Ok(())
}

/// What a runtime could change on the host, as text to compare.
#[derive(Debug, PartialEq, Eq)]
struct HostView {
    /// This thread's (private) mount table, whole lines.
    mounts: Vec<String>,
    /// The real host's system mounts: mount point -> flags, propagation, type.
    system_mounts: BTreeMap<String, String>,
    dev: BTreeMap<String, String>,
    links: BTreeMap<String, String>,
    sysctls: BTreeMap<String, String>,
}

/// /proc/sys values a container's spec could reach: uts, ipc and net ones
/// (allowed only in a namespace of the container's own) and a few global ones.
const SYSCTLS: &[&str] = &[
    "kernel/hostname",
    "kernel/domainname",
    "kernel/msgmax",
    "kernel/msgmnb",
    "kernel/shmmax",
    "kernel/sem",
    "kernel/core_pattern",
    "kernel/pid_max",
    "fs/mqueue/msg_max",
    "net/ipv4/ip_forward",
    "net/ipv4/ip_unprivileged_port_start",
    "net/ipv4/ping_group_range",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/lo/forwarding",
    "net/core/somaxconn",
    "vm/overcommit_memory",
];

/// The forwarding switches netavark may turn on (the kernel mirrors
/// ip_forward into every interface's `forwarding`).
const FORWARDING: &[&str] = &[
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/lo/forwarding",
];

/// Mount points of the real host a runtime must never touch.
fn is_system_mount(point: &str) -> bool {
    matches!(
        point,
        "/" | "/proc" | "/sys" | "/dev" | "/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/run"
    ) || point.starts_with("/sys/fs/cgroup")
}

/// Interfaces other tests make and remove while this one runs.
fn is_test_link(name: &str) -> bool {
    ["veth", "cni", "skiff", "podman", "br-", "netavark"]
        .iter()
        .any(|p| name.starts_with(p))
}

impl HostView {
    fn read() -> Result<Self> {
        let mounts = fs::read_to_string("/proc/thread-self/mountinfo")?
            .lines()
            .map(str::to_owned)
            .collect();
        let mut system_mounts = BTreeMap::new();
        for line in fs::read_to_string("/proc/1/mountinfo")?.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(point), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
                continue;
            };
            if is_system_mount(point) {
                // Per-mount flags, optional fields (propagation), fs type.
                let value = format!("{} {} {fstype}", fields[5], fields[6..sep].join(" "));
                system_mounts.insert((*point).to_owned(), value);
            }
        }
        Ok(Self {
            mounts,
            system_mounts,
            dev: read_dev()?,
            links: read_links()?,
            sysctls: SYSCTLS
                .iter()
                .map(|k| {
                    let v = fs::read_to_string(Path::new("/proc/sys").join(k)).unwrap_or_default();
                    ((*k).to_owned(), v.trim().to_owned())
                })
                .collect(),
        })
    }

    /// Fails naming every difference to `before`.
    fn unchanged_since(&self, before: &HostView) -> Result<()> {
        let mut diffs = Vec::new();
        for line in &before.mounts {
            if !self.mounts.contains(line) {
                diffs.push(format!("mount gone or changed: {line}"));
            }
        }
        for line in &self.mounts {
            if !before.mounts.contains(line) {
                diffs.push(format!("mount new or changed: {line}"));
            }
        }
        diff_maps(
            "host mount",
            &before.system_mounts,
            &self.system_mounts,
            &mut diffs,
        );
        diff_maps("/dev", &before.dev, &self.dev, &mut diffs);
        // netavark (the engine's and builder's container networking, whose
        // tests may run meanwhile) turns IPv4 forwarding on for the host, as
        // docker and podman do, and never off: that one change is allowed.
        let mut sysctls_after = self.sysctls.clone();
        for k in FORWARDING {
            if before.sysctls.get(*k).is_some_and(|v| v == "0")
                && sysctls_after.get(*k).is_some_and(|v| v == "1")
            {
                sysctls_after.insert((*k).to_owned(), "0".to_owned());
            }
        }
        diff_maps("sysctl", &before.sysctls, &sysctls_after, &mut diffs);
        // Other tests add and remove their own interfaces meanwhile; every
        // interface that was there (lo above all) must be there unchanged.
        for (name, was) in &before.links {
            if is_test_link(name) {
                continue;
            }
            match self.links.get(name) {
                Some(now) if now == was => {}
                Some(now) => diffs.push(format!("link {name}: {was:?} -> {now:?}")),
                None => diffs.push(format!("link {name} is gone")),
            }
        }
        if !diffs.is_empty() {
            bail!("the host changed:\n{}", diffs.join("\n"));
        }
        Ok(())
    }
}

fn diff_maps(
    what: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    diffs: &mut Vec<String>,
) {
    for (k, v) in before {
        match after.get(k) {
            Some(now) if now == v => {}
            Some(now) => diffs.push(format!("{what} {k}: {v:?} -> {now:?}")),
            None => diffs.push(format!("{what} {k} is gone")),
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            diffs.push(format!("{what} {k} is new: {v:?}"));
        }
    }
}

/// Device nodes, directories and links under /dev (not the contents of the
/// pts, shm and mqueue mounts, which other programs change all the time).
fn read_dev() -> Result<BTreeMap<String, String>> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        for e in fs::read_dir(dir)? {
            let e = e?;
            let path = e.path();
            let md = fs::symlink_metadata(&path)?;
            let t = md.file_type();
            let kind = if t.is_char_device() {
                "c"
            } else if t.is_block_device() {
                "b"
            } else if t.is_dir() {
                "d"
            } else if t.is_symlink() {
                "l"
            } else {
                "f"
            };
            let target = if t.is_symlink() {
                fs::read_link(&path)?.display().to_string()
            } else {
                String::new()
            };
            out.insert(
                path.display().to_string(),
                format!(
                    "{kind} {:o} {}:{} {} {target}",
                    md.mode(),
                    md.uid(),
                    md.gid(),
                    md.rdev()
                ),
            );
            let skip = ["/dev/pts", "/dev/shm", "/dev/mqueue"];
            if t.is_dir() && !skip.iter().any(|s| path == Path::new(s)) {
                walk(&path, out)?;
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(Path::new("/dev"), &mut out)?;
    Ok(out)
}

/// Each interface of the host's network namespace: flags, mtu, addresses.
fn read_links() -> Result<BTreeMap<String, String>> {
    let out = Command::new("ip").args(["-j", "addr", "show"]).output()?;
    ensure!(out.status.success(), "ip addr show failed");
    let links: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    Ok(links
        .iter()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_owned();
            let addrs: Vec<String> = l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| Some(format!("{}/{}", a["local"].as_str()?, a["prefixlen"])))
                .collect();
            let value = format!(
                "{} mtu {} state {} {}",
                l["flags"],
                l["mtu"],
                l["operstate"],
                addrs.join(",")
            );
            Some((name, value))
        })
        .collect())
}

fn drop_namespace(spec: &mut Value, kind: &str) {
    if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
        list.retain(|n| n["type"] != kind);
    }
}

/// No mount namespace; masked and read-only paths need one (runc and skiff
/// refuse them without), so they go too.
fn drop_mount_namespace(spec: &mut Value) {
    drop_namespace(spec, "mount");
    spec["linux"]["maskedPaths"] = json!([]);
    spec["linux"]["readonlyPaths"] = json!([]);
}

/// Runs the containers of one case and checks the host is as it was.
fn check_case(edit: impl Fn(&mut Value)) -> Result<()> {
    enter_private_mount_namespace()?;
    let env = Env::new(&["sh", "-c", "echo ran"])?;
    let _g = env.guard();
    env.edit_spec(&edit)?;
    let before = HostView::read()?;

    let out = env.run_code(&env.uid("run"), 0)?;
    ensure!(out.contains("ran"), "foreground run printed {out:?}");

    env.set_args(&["sleep", "1000"])?;
    let id = env.uid("life");
    env.create(&id)?;
    env.ok(["start", &id])?;
    let out = env.ok(["exec", &id, "sh", "-c", "echo exec-ok"])?;
    ensure!(out.contains("exec-ok"), "exec printed {out:?}");
    env.ok(["kill", &id, "KILL"])?;
    env.wait_status(&id, "stopped")?;
    env.ok(["delete", &id])?;
    env.assert_clean(&id, None)?;

    let created = env.uid("created");
    env.create(&created)?;
    env.ok(["delete", &created])?;
    env.assert_clean(&created, None)?;

    HostView::read()?.unchanged_since(&before)
}

/// A spec the runtime must refuse; nothing may change meanwhile.
fn check_refused(edit: impl Fn(&mut Value), why: &str) -> Result<()> {
    enter_private_mount_namespace()?;
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(&edit)?;
    let before = HostView::read()?;
    let id = env.uid("refused");
    env.track(&id);
    let err = env.fails(["run", "--bundle", &env.bundle.display().to_string(), &id])?;
    ensure!(err.contains(why), "expected {why:?} in: {err}");
    env.assert_clean(&id, None)?;
    HostView::read()?.unchanged_since(&before)
}

#[test]
fn no_mount_namespace() -> Result<()> {
    check_case(drop_mount_namespace)
}

/// The reproduction: no mount namespace, no masked or read-only
/// paths, a writable root, and the usual read-only cgroup mount.
#[test]
fn no_mount_namespace_writable_root() -> Result<()> {
    check_case(|s| {
        drop_mount_namespace(s);
        s["root"]["readonly"] = json!(false);
    })
}

#[test]
fn no_pid_namespace() -> Result<()> {
    check_case(|s| drop_namespace(s, "pid"))
}

#[test]
fn no_network_namespace() -> Result<()> {
    check_case(|s| drop_namespace(s, "network"))
}

#[test]
fn no_ipc_namespace() -> Result<()> {
    check_case(|s| drop_namespace(s, "ipc"))
}

#[test]
fn no_uts_namespace() -> Result<()> {
    check_case(|s| {
        drop_namespace(s, "uts");
        if let Some(o) = s.as_object_mut() {
            o.remove("hostname");
        }
    })
}

#[test]
fn no_namespaces_at_all() -> Result<()> {
    check_case(|s| {
        drop_mount_namespace(s);
        s["linux"]["namespaces"] = json!([]);
        if let Some(o) = s.as_object_mut() {
            o.remove("hostname");
        }
    })
}

#[test]
fn shared_rootfs_propagation() -> Result<()> {
    check_case(|s| s["linux"]["rootfsPropagation"] = json!("shared"))
}

#[test]
fn shared_rootfs_propagation_without_mount_namespace() -> Result<()> {
    check_case(|s| {
        drop_mount_namespace(s);
        s["linux"]["rootfsPropagation"] = json!("shared");
    })
}

#[test]
fn host_path_binds() -> Result<()> {
    // Host directories: one on the host's own filesystem, one on a tmpfs of
    // this test (inside the private namespace), bound in several ways.
    let dir = tempfile::Builder::new().prefix("skiff-hi-").tempdir()?;
    let plain = dir.path().join("plain");
    fs::create_dir_all(&plain)?;
    fs::write(plain.join("f"), "x")?;
    check_case(|s| {
        let mounts = s["mounts"].as_array_mut();
        if let Some(m) = mounts {
            m.push(json!({"destination": "/rw", "type": "bind",
                "source": plain, "options": ["rbind", "rw"]}));
            m.push(json!({"destination": "/ro", "type": "bind",
                "source": plain, "options": ["bind", "ro", "nosuid", "nodev"]}));
            m.push(json!({"destination": "/shared", "type": "bind",
                "source": plain, "options": ["rbind", "rshared"]}));
            m.push(json!({"destination": "/etc-ro", "type": "bind",
                "source": "/etc", "options": ["rbind", "ro", "rprivate"]}));
        }
    })
}

#[test]
fn host_path_binds_without_mount_namespace() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("skiff-hi-").tempdir()?;
    let plain = dir.path().join("plain");
    fs::create_dir_all(&plain)?;
    check_case(|s| {
        drop_mount_namespace(s);
        if let Some(m) = s["mounts"].as_array_mut() {
            m.push(json!({"destination": "/ro", "type": "bind",
                "source": plain, "options": ["rbind", "ro"]}));
            m.push(json!({"destination": "/etc-ro", "type": "bind",
                "source": "/etc", "options": ["rbind", "ro"]}));
        }
    })
}

#[test]
fn hooks_of_every_kind() -> Result<()> {
    let hook = json!([{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null"]}]);
    check_case(|s| {
        s["hooks"] = json!({
            "prestart": hook, "createRuntime": hook, "createContainer": hook,
            "startContainer": hook, "poststart": hook, "poststop": hook
        });
    })
}

#[test]
fn hooks_without_mount_namespace() -> Result<()> {
    let hook = json!([{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null"]}]);
    check_case(|s| {
        drop_mount_namespace(s);
        s["hooks"] = json!({
            "prestart": hook, "createRuntime": hook, "createContainer": hook,
            "startContainer": hook, "poststart": hook, "poststop": hook
        });
    })
}

#[test]
fn hostname_without_uts_namespace_is_refused() -> Result<()> {
    check_refused(
        |s| drop_namespace(s, "uts"),
        "without a private UTS namespace",
    )
}

#[test]
fn net_sysctl_without_network_namespace_is_refused() -> Result<()> {
    check_refused(
        |s| {
            drop_namespace(s, "network");
            s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        },
        "not allowed in host network namespace",
    )
}

#[test]
fn ipc_sysctl_without_ipc_namespace_is_refused() -> Result<()> {
    check_refused(
        |s| {
            drop_namespace(s, "ipc");
            s["linux"]["sysctl"] = json!({"kernel.msgmax": "9000"});
        },
        "not allowed in the hosts ipc namespace",
    )
}

#[test]
fn uts_sysctl_without_uts_namespace_is_refused() -> Result<()> {
    check_refused(
        |s| {
            drop_namespace(s, "uts");
            if let Some(o) = s.as_object_mut() {
                o.remove("hostname");
            }
            s["linux"]["sysctl"] = json!({"kernel.domainname": "evil"});
        },
        "not in a separate kernel namespace",
    )
}
