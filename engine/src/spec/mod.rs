//! The OCI runtime spec (config.json) of a container: the image's process
//! with the user's overrides, docker's default security profile adjusted by
//! the flags, its mounts, resources and network namespace.

pub mod caps;
pub mod resources;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use skiff_specs::runtime_spec::{container_spec, Network, SpecOptions};
use skiff_specs::{runtime_config, ImageConfig, Overrides};

use crate::container::record::{Container, MountKind};
use crate::container::ContainerDir;

/// Where the container's network namespace comes from.
#[derive(Debug, Clone)]
pub enum NetNs {
    /// A namespace the engine made and wired (a path to join).
    Path(PathBuf),
    /// `--network host`.
    Host,
    /// `--network none`: a new namespace with `lo` only.
    Isolated,
}

/// A mount with its source resolved to a host path.
#[derive(Debug, Clone)]
pub struct ResolvedMount {
    pub kind: MountKind,
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
    pub tmpfs_options: String,
}

/// Everything the spec is made from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub container: &'a Container,
    pub image: &'a ImageConfig,
    /// The mounted rootfs (the image's /etc/passwd is read from it).
    pub rootfs: &'a Path,
    pub dir: &'a ContainerDir,
    pub netns: NetNs,
    pub mounts: Vec<ResolvedMount>,
    /// A static init to run as PID 1 (`--init`).
    pub init: Option<PathBuf>,
    /// The monitor group annotation's value.
    pub monitor_group: String,
}

/// Where `--init`'s binary is bound in the container (docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

pub fn build(inputs: &Inputs) -> Result<Value> {
    let c = inputs.container;
    let h = &c.host;
    let overrides = Overrides {
        entrypoint: c.config.entrypoint.clone(),
        cmd: c.config.cmd.clone(),
        env: c.config.env.clone(),
        user: c.config.user.clone(),
        working_dir: c.config.working_dir.clone(),
    };
    let rc = runtime_config(inputs.image, inputs.rootfs, &overrides)?;
    let mut process = rc.process;
    if !process.env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        process
            .env
            .insert(0, format!("HOSTNAME={}", c.config.hostname));
    }
    if c.config.tty && !process.env.iter().any(|e| e.starts_with("TERM=")) {
        process.env.push("TERM=xterm".to_owned());
    }
    if inputs.init.is_some() {
        let mut args = vec![INIT_PATH.to_owned(), "--".to_owned()];
        args.append(&mut process.args);
        process.args = args;
    }
    let seccomp = !h.privileged && h.seccomp.as_deref() != Some("unconfined");
    let opts = SpecOptions {
        hostname: &c.config.hostname,
        network: match inputs.netns {
            NetNs::Host => Network::Host,
            _ => Network::Isolated,
        },
        readonly_rootfs: h.read_only,
        terminal: c.config.tty,
        seccomp,
    };
    let mut spec = container_spec(&process, inputs.rootfs, &opts);

    if let NetNs::Path(p) = &inputs.netns {
        if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
            for ns in list.iter_mut() {
                if ns["type"] == "network" {
                    *ns = json!({"type": "network", "path": p});
                }
            }
        }
    }
    if !c.config.domainname.is_empty() {
        spec["domainname"] = json!(c.config.domainname);
    }

    let caps = caps::effective(&h.cap_add, &h.cap_drop, h.privileged)?;
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set] = json!(caps);
    }
    spec["process"]["noNewPrivileges"] = json!(h.no_new_privileges);
    if let Some(file) = h.seccomp.as_deref().filter(|s| *s != "unconfined") {
        if !h.privileged {
            spec["linux"]["seccomp"] = seccomp_profile(file)?;
        }
    }
    if !h.ulimits.is_empty() {
        let mut rlimits: Vec<Value> = spec["process"]["rlimits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for u in &h.ulimits {
            let typ = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
            rlimits.retain(|r| r["type"] != typ.as_str());
            rlimits.push(json!({"type": typ, "soft": u.soft, "hard": u.hard}));
        }
        spec["process"]["rlimits"] = json!(rlimits);
    }
    if h.privileged {
        if let Some(linux) = spec["linux"].as_object_mut() {
            linux.remove("maskedPaths");
            linux.remove("readonlyPaths");
        }
    }

    let mounts = spec["mounts"]
        .as_array_mut()
        .context("spec has no mounts")?;
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", if h.privileged { "rw" } else { "ro" }]}));
    if h.shm_size > 0 {
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev/shm" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    format!("size={}", h.shm_size)
                ]);
            }
        }
    }
    // docker's per-container files, unless the user mounts their own.
    let user_targets: Vec<&str> = inputs.mounts.iter().map(|m| m.target.as_str()).collect();
    for (file, target) in [
        (inputs.dir.hosts(), "/etc/hosts"),
        (inputs.dir.resolv_conf(), "/etc/resolv.conf"),
        (inputs.dir.hostname(), "/etc/hostname"),
    ] {
        if file.exists() && !user_targets.contains(&target) {
            mounts.push(
                json!({"destination": target, "type": "bind", "source": file,
                "options": ["rbind", "rprivate"]}),
            );
        }
    }
    for m in &inputs.mounts {
        mounts.push(mount_json(m));
    }
    if let Some(init) = &inputs.init {
        mounts.push(
            json!({"destination": INIT_PATH, "type": "bind", "source": init,
            "options": ["bind", "ro", "nosuid", "nodev"]}),
        );
    }

    spec["linux"]["resources"] = resources::json(h)?;
    spec["linux"]["cgroupsPath"] = json!(format!("/skiffctl/{}", c.id));
    if !h.sysctls.is_empty() {
        spec["linux"]["sysctl"] = json!(h.sysctls);
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        skiff_specs::monitor::GROUP_ANNOTATION.to_owned(),
        json!(inputs.monitor_group),
    );
    spec["annotations"] = Value::Object(annotations);
    Ok(spec)
}

fn mount_json(m: &ResolvedMount) -> Value {
    match m.kind {
        MountKind::Tmpfs => {
            let mut opts = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
            opts.extend(
                m.tmpfs_options
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned),
            );
            if m.read_only {
                opts.push("ro".to_owned());
            }
            json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
        MountKind::Bind | MountKind::Volume => {
            let mut opts = vec!["rbind", "rprivate"];
            if m.read_only {
                opts.push("ro");
            }
            json!({"destination": m.target, "type": "bind", "source": m.source, "options": opts})
        }
    }
}

/// `--security-opt seccomp=FILE`: an OCI seccomp section, or docker's
/// profile format (its `archMap` becomes the architecture list).
fn seccomp_profile(file: &str) -> Result<Value> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--security-opt seccomp={file}: cannot read the profile"))?;
    let mut v: Value = serde_json::from_str(&text)
        .with_context(|| format!("--security-opt seccomp={file}: invalid JSON"))?;
    if v.get("defaultAction").is_none() {
        bail!("--security-opt seccomp={file}: the profile has no defaultAction");
    }
    if let Some(map) = v.get("archMap").and_then(Value::as_array).cloned() {
        let mut arches = Vec::new();
        for a in map {
            if let Some(arch) = a.get("architecture") {
                arches.push(arch.clone());
            }
            if let Some(subs) = a.get("subArchitectures").and_then(Value::as_array) {
                arches.extend(subs.iter().cloned());
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("archMap");
            o.insert("architectures".to_owned(), json!(arches));
        }
    }
    Ok(v)
}
