//! What the container sees of the file system and namespaces: its own
//! namespaces, bind and tmpfs mounts, a read-only rootfs, masked and read-only
//! paths, and the rootfs propagation the spec asks for.

use std::fs;

use anyhow::{ensure, Result};
use serde_json::json;
use skiff_integration::Env;

fn add_mount(env: &Env, m: serde_json::Value) -> Result<()> {
    env.edit_spec(|s| {
        if let Some(ms) = s["mounts"].as_array_mut() {
            ms.push(m);
        }
    })
}

#[test]
fn namespaces_pid_uts_net_ipc_mnt() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(|s| s["hostname"] = json!("skiff-test-host"))?;
    let out = env.sh(
        "ns",
        "echo self=$$; echo host=$(hostname); echo netdevs=$(tail -n +3 /proc/net/dev | wc -l); \
         for n in pid uts net ipc mnt; do echo $n=$(readlink /proc/self/ns/$n); done",
    )?;
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_owned()
    };
    ensure!(get("self") == "1", "{out}");
    ensure!(get("host") == "skiff-test-host", "{out}");
    ensure!(get("netdevs") == "1", "only lo in a new netns: {out}");
    for n in ["pid", "uts", "net", "ipc", "mnt"] {
        let host = fs::read_link(format!("/proc/self/ns/{n}"))?;
        let inside = get(n);
        ensure!(inside.starts_with(&format!("{n}:[")), "{n}: {out}");
        ensure!(
            host.to_string_lossy() != inside,
            "{n} namespace is the host's"
        );
    }

    // Joining a namespace by path: this test's network namespace.
    let ours = format!("/proc/{}/ns/net", std::process::id());
    env.edit_spec(|s| {
        if let Some(ns) = s["linux"]["namespaces"].as_array_mut() {
            for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                n["path"] = json!(ours);
            }
        }
    })?;
    let out = env.sh("hostnet", "readlink /proc/self/ns/net")?;
    let host = fs::read_link(&ours)?;
    ensure!(out.trim() == host.to_string_lossy(), "{out}");
    Ok(())
}

#[test]
fn bind_and_tmpfs_mounts() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let ro = env.tmp.path().join("ro");
    let rw = env.tmp.path().join("rw");
    fs::create_dir(&ro)?;
    fs::create_dir(&rw)?;
    fs::write(ro.join("hello.txt"), "from the host\n")?;
    let file = env.tmp.path().join("single");
    fs::write(&file, "one file\n")?;
    add_mount(
        &env,
        json!({"destination": "/ro", "type": "bind", "source": ro,
                           "options": ["rbind", "ro"]}),
    )?;
    add_mount(
        &env,
        json!({"destination": "/rw", "type": "none", "source": rw,
                           "options": ["bind", "rw"]}),
    )?;
    add_mount(
        &env,
        json!({"destination": "/etc/single", "type": "bind", "source": file,
                           "options": ["bind", "ro"]}),
    )?;
    add_mount(
        &env,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1770", "size=1m"]}),
    )?;
    let out = env.sh(
        "binds",
        "cat /ro/hello.txt; cat /etc/single; \
         touch /ro/x 2>/dev/null && echo ro-writable; \
         echo written > /rw/out; \
         echo data > /scratch/f && cat /scratch/f; \
         grep ' /scratch ' /proc/mounts; stat -c %a /scratch",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() == 5, "{out}");
    ensure!(
        lines[0] == "from the host" && lines[1] == "one file",
        "{out}"
    );
    ensure!(!out.contains("ro-writable"), "{out}");
    ensure!(fs::read_to_string(rw.join("out"))? == "written\n");
    ensure!(lines[2] == "data", "{out}");
    ensure!(lines[3].starts_with("tmpfs /scratch tmpfs"), "{out}");
    ensure!(
        lines[3].contains("nosuid") && lines[3].contains("size=1024k"),
        "{out}"
    );
    ensure!(lines[4] == "1770", "{out}");
    ensure!(!ro.join("x").exists());
    Ok(())
}

#[test]
fn readonly_rootfs() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let out = env.sh(
        "ro",
        "touch /newfile 2>&1; echo rc=$?; echo ok > /dev/shm/w && echo tmpfs-ok",
    )?;
    ensure!(out.contains("Read-only file system"), "{out}");
    ensure!(out.contains("rc=1") && out.contains("tmpfs-ok"), "{out}");
    ensure!(!env.bundle.join("rootfs/newfile").exists());

    // The control: a writable rootfs.
    env.edit_spec(|s| s["root"]["readonly"] = json!(false))?;
    let out = env.sh("rw", "touch /newfile && echo made")?;
    ensure!(out.trim() == "made", "{out}");
    ensure!(env.bundle.join("rootfs/newfile").exists());
    Ok(())
}

#[test]
fn masked_and_readonly_paths() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    // Without masking, /etc/passwd has content and the uts hostname in
    // /proc/sys is writable (it belongs to the container's uts namespace).
    let script = "echo kcore=$(wc -c < /proc/kcore); echo passwd=$(wc -c < /etc/passwd); \
                  echo fw=$(ls /sys/firmware | wc -l); \
                  cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname && echo sys-writable; \
                  echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; \
                  echo end";
    env.edit_spec(|s| {
        s["linux"]["maskedPaths"] = json!([]);
        s["linux"]["readonlyPaths"] = json!([]);
    })?;
    let open = env.sh(
        "open",
        "echo passwd=$(wc -c < /etc/passwd); \
        cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname && echo sys-writable",
    )?;
    ensure!(!open.contains("passwd=0"), "{open}");
    ensure!(open.contains("sys-writable"), "{open}");

    env.write_spec(&skiff_integration::default_spec(&["true"]))?;
    env.edit_spec(|s| {
        if let Some(m) = s["linux"]["maskedPaths"].as_array_mut() {
            m.push(json!("/etc/passwd"));
        }
    })?;
    let out = env.sh("masked", script)?;
    // Some kernels have no /proc/kcore; then there is nothing to read either.
    let kcore_absent = !std::path::Path::new("/proc/kcore").exists();
    ensure!(
        out.contains("kcore=0") || (kcore_absent && out.contains("kcore=\n")),
        "/proc/kcore is not masked: {out}"
    );
    ensure!(out.contains("passwd=0"), "/etc/passwd is not masked: {out}");
    ensure!(out.contains("fw=0"), "/sys/firmware is not masked: {out}");
    ensure!(
        !out.contains("sys-writable"),
        "/proc/sys is writable: {out}"
    );
    ensure!(
        !out.contains("sysrq-writable"),
        "/proc/sysrq-trigger is writable: {out}"
    );
    ensure!(out.contains("end"), "{out}");

    // readonlyPaths applies to any path, e.g. a rw bind mount.
    let rw = env.tmp.path().join("rw");
    fs::create_dir(&rw)?;
    add_mount(
        &env,
        json!({"destination": "/rw", "type": "bind", "source": rw,
                           "options": ["rbind", "rw"]}),
    )?;
    env.edit_spec(|s| {
        if let Some(m) = s["linux"]["readonlyPaths"].as_array_mut() {
            m.push(json!("/rw"));
        }
    })?;
    let out = env.sh("rop", "(echo x > /rw/f) 2>&1; echo rc=$?")?;
    ensure!(out.contains("Read-only file system"), "{out}");
    ensure!(!rw.join("f").exists());
    Ok(())
}

/// The optional fields of the container's "/" line in /proc/self/mountinfo.
fn root_propagation(env: &Env, prop: Option<&str>) -> Result<String> {
    env.edit_spec(|s| match prop {
        Some(p) => s["linux"]["rootfsPropagation"] = json!(p),
        None => {
            if let Some(l) = s["linux"].as_object_mut() {
                l.remove("rootfsPropagation");
            }
        }
    })?;
    env.set_args(&[
        "sh",
        "-c",
        "grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo",
    ])?;
    let id = env.uid(&format!("prop{}", prop.unwrap_or("default")));
    let out = env.run_code(&id, 0)?;
    // The bundle's own shared mount is the test's; anything else is a leak.
    let bundle_mount = format!("mount {}", env.bundle.display());
    let left: Vec<String> = env
        .leftovers(&id, None)
        .into_iter()
        .filter(|l| *l != bundle_mount)
        .collect();
    ensure!(left.is_empty(), "{id} left behind {left:?}");
    let line = out.lines().next().unwrap_or_default();
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields
        .iter()
        .position(|f| *f == "-")
        .unwrap_or(fields.len());
    Ok(fields.get(6..sep).unwrap_or_default().join(" "))
}

#[test]
fn rootfs_propagation() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    // A slave copy of a private mount is private: put the bundle on a shared
    // mount, as on a systemd host, so "slave" has a master to show.
    let none: Option<&str> = None;
    mount(Some(&env.bundle), &env.bundle, none, MsFlags::MS_BIND, none)?;
    mount(none, &env.bundle, none, MsFlags::MS_SHARED, none)?;

    let shared = root_propagation(&env, Some("shared"))?;
    ensure!(shared.contains("shared:"), "shared: {shared:?}");
    let slave = root_propagation(&env, Some("slave"))?;
    ensure!(
        slave.contains("master:") && !slave.contains("shared:"),
        "slave: {slave:?}"
    );
    let private = root_propagation(&env, Some("private"))?;
    ensure!(private.is_empty(), "private: {private:?}");
    let unbindable = root_propagation(&env, Some("unbindable"))?;
    ensure!(
        unbindable.contains("unbindable"),
        "unbindable: {unbindable:?}"
    );
    // runc's default is rslave.
    let default = root_propagation(&env, None)?;
    ensure!(
        default.contains("master:") && !default.contains("shared:"),
        "default: {default:?}"
    );

    // An unknown value is an error.
    env.edit_spec(|s| s["linux"]["rootfsPropagation"] = json!("sideways"))?;
    let id = env.uid("propbad");
    let out = env.run_fg(&id, &[], std::time::Duration::from_secs(30))?;
    ensure!(!out.status.success());
    ensure!(env.root.join(&id).symlink_metadata().is_err());
    Ok(())
}

/// A cgroup mount with "ro" shows every hierarchy read-only inside the
/// container (runc's behaviour); the host's hierarchies stay writable.
#[test]
fn read_only_cgroup_mount() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    let out = env.sh(
        "cgro",
        "grep -E ' /sys/fs/cgroup/?[^ ]* ' /proc/self/mountinfo | \
         grep -E ' - cgroup2? ' | cut -d' ' -f5,6",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(!lines.is_empty(), "no cgroup mount in the container");
    for l in &lines {
        ensure!(
            l.split(' ')
                .nth(1)
                .is_some_and(|o| o.split(',').any(|f| f == "ro")),
            "writable cgroup mount in the container: {l}"
        );
    }
    let host = fs::read_to_string("/proc/1/mountinfo")?;
    for l in host.lines().filter(|l| l.contains(" - cgroup")) {
        let opts = l.split(' ').nth(5).unwrap_or_default();
        ensure!(
            !opts.split(',').any(|f| f == "ro"),
            "host cgroup read-only: {l}"
        );
    }
    Ok(())
}

/// The rootless layout: /sys as a recursive read-only bind of the host's,
/// then the usual read-only cgroup mount over /sys/fs/cgroup.
#[test]
fn sys_as_read_only_rbind_with_cgroup_mount() -> Result<()> {
    let env = Env::new(&["true"])?;
    let _g = env.guard();
    env.edit_spec(|s| {
        if let Some(ms) = s["mounts"].as_array_mut() {
            for m in ms.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
            }
        }
    })?;
    let out = env.sh(
        "sysrbind",
        "test -d /sys/fs/cgroup && ! touch /sys/kernel/x 2>/dev/null && echo fine",
    )?;
    ensure!(out.contains("fine"), "{out}");
    Ok(())
}
