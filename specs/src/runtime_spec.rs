//! A whole OCI runtime spec (config.json) for a container made from an image: the
//! process the image decides (see runtime_config), the default security profile, and the
//! namespaces and mounts every container gets.

use std::path::Path;

use serde_json::{json, Value};

use crate::runtime_config::Process;
use crate::security::{
    default_mounts, default_seccomp, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS,
};

/// Where the container's network comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A new, empty network namespace (loopback only, down).
    Isolated,
    /// The host's network namespace.
    Host,
}

/// What the caller decides beyond the image.
#[derive(Debug, Clone)]
pub struct SpecOptions<'a> {
    pub hostname: &'a str,
    pub network: Network,
    pub readonly_rootfs: bool,
    pub terminal: bool,
    /// Apply the default seccomp filter.
    pub seccomp: bool,
}

impl Default for SpecOptions<'_> {
    fn default() -> Self {
        SpecOptions {
            hostname: "skiff",
            network: Network::Isolated,
            readonly_rootfs: false,
            terminal: false,
            seccomp: true,
        }
    }
}

/// The open-file limit containers get (Docker's default).
const NOFILE: u64 = 1_048_576;

/// The runtime spec for `process` in the rootfs at `rootfs` (a path relative to the bundle,
/// like `rootfs`, or absolute).
pub fn container_spec(process: &Process, rootfs: &Path, opts: &SpecOptions) -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if opts.network == Network::Isolated {
        namespaces.push(json!({"type": "network"}));
    }
    let nofile = NOFILE.min(hard_open_files());
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    });
    if opts.seccomp {
        linux["seccomp"] = default_seccomp();
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": opts.terminal,
            "user": process.user,
            "args": process.args,
            "env": process.env,
            "cwd": process.cwd,
            "capabilities": {
                "bounding": DEFAULT_CAPABILITIES,
                "effective": DEFAULT_CAPABILITIES,
                "permitted": DEFAULT_CAPABILITIES,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": false
        },
        "root": {"path": rootfs, "readonly": opts.readonly_rootfs},
        "hostname": opts.hostname,
        "mounts": default_mounts(),
        "linux": linux,
    })
}

/// Our own hard open-file limit: raising it for the container needs CAP_SYS_RESOURCE,
/// which the caller may not have.
fn hard_open_files() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(_, hard)| hard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_config::ProcessUser;

    fn process() -> Process {
        Process {
            user: ProcessUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
            },
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/app".into(),
        }
    }

    #[test]
    fn spec_has_the_profile_and_the_process() {
        let spec = container_spec(&process(), Path::new("rootfs"), &SpecOptions::default());
        assert_eq!(spec["process"]["user"]["uid"], 1000);
        assert_eq!(spec["process"]["cwd"], "/app");
        assert_eq!(spec["root"]["path"], "rootfs");
        let caps = spec["process"]["capabilities"]["bounding"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(caps, 14);
        assert!(spec["linux"]["seccomp"]["syscalls"].is_array());
        let ns = spec["linux"]["namespaces"].to_string();
        assert!(ns.contains("network"), "{ns}");
    }

    #[test]
    fn host_network_and_no_seccomp() {
        let opts = SpecOptions {
            network: Network::Host,
            seccomp: false,
            ..SpecOptions::default()
        };
        let spec = container_spec(&process(), Path::new("/r"), &opts);
        assert!(!spec["linux"]["namespaces"].to_string().contains("network"));
        assert!(spec["linux"].get("seccomp").is_none());
    }
}
