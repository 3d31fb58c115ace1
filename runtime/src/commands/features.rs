//! `skiff features`: what this build of skiff supports, as the runtime-spec
//! features document (features.md) that `runc features` prints.
//!
//! Every list is what skiff's libcontainer 0.7 (and the libseccomp it is
//! linked with) really handles, not what runc handles: no systemd cgroup
//! driver (libcgroups is built without it), no SELinux labels, no idmapped
//! mounts. Seccomp flags and architectures are checked against the running
//! kernel and libseccomp.

use std::io::{self, Write};

use anyhow::Result;
use clap::Args;
use libcontainer::syscall::linux::MountOption;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::GlobalOpts;

/// Prints the runtime-spec features document describing this build of skiff
#[derive(Args, Debug)]
pub struct Features {}

impl Features {
    pub fn exec(self, _g: &GlobalOpts) -> Result<()> {
        let doc = document();
        // runc indents with four spaces.
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        doc.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?;
        out.push(b'\n');
        io::stdout().lock().write_all(&out)?;
        Ok(())
    }
}

/// The newest runtime-spec version skiff accepts (spec_fixups checks the same bound).
const OCI_VERSION_MAX: &str = "1.3.0";

const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Options libcontainer applies with mount_setattr(2), beside the mount(2) flags.
const RECURSIVE_MOUNT_OPTIONS: &[&str] = &[
    "ratime",
    "rdev",
    "rdiratime",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "rrelatime",
    "rro",
    "rrw",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
];

const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Every capability libcontainer knows, in kernel numbering order.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Architectures libcontainer can add to a filter; the list printed keeps
/// those the linked libseccomp knows too.
const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// A filter flag libcontainer passes on, with what it needs to work: the
/// libseccomp API level and the kernel flag bits to probe.
struct FilterFlag {
    name: &'static str,
    api_level: u32,
    kernel_bits: libc::c_ulong,
}

const FLAG_TSYNC: libc::c_ulong = 1;
const FLAG_LOG: libc::c_ulong = 2;
const FLAG_SPEC_ALLOW: libc::c_ulong = 4;
const FLAG_NEW_LISTENER: libc::c_ulong = 8;
const FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 32;

const SECCOMP_FLAGS: &[FilterFlag] = &[
    FilterFlag {
        name: "SECCOMP_FILTER_FLAG_TSYNC",
        api_level: 2,
        kernel_bits: FLAG_TSYNC,
    },
    FilterFlag {
        name: "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        api_level: 4,
        kernel_bits: FLAG_SPEC_ALLOW,
    },
    FilterFlag {
        name: "SECCOMP_FILTER_FLAG_LOG",
        api_level: 3,
        kernel_bits: FLAG_LOG,
    },
    // The kernel accepts this one only together with NEW_LISTENER.
    FilterFlag {
        name: "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        api_level: 7,
        kernel_bits: FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER,
    },
];

const MEMORY_POLICY_MODES: &[&str] = &[
    "MPOL_DEFAULT",
    "MPOL_PREFERRED",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];

const MEMORY_POLICY_FLAGS: &[&str] = &[
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// The features document.
pub fn document() -> Value {
    let mut mount_options = MountOption::known_options();
    mount_options.extend(RECURSIVE_MOUNT_OPTIONS.iter().map(|s| s.to_string()));
    mount_options.sort();
    mount_options.dedup();

    let mut annotations = serde_json::Map::new();
    annotations.insert("org.skiff.version".into(), json!(env!("CARGO_PKG_VERSION")));
    annotations.insert("org.skiff.libcontainer.version".into(), json!("0.7.0"));
    if let Some(v) = libseccomp::version() {
        annotations.insert("io.github.seccomp.libseccomp.version".into(), json!(v));
    }

    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        "mountOptions": mount_options,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": CAPABILITIES,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false,
            },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": supported_archs(),
                "knownFlags": SECCOMP_FLAGS.iter().map(|f| f.name).collect::<Vec<_>>(),
                "supportedFlags": supported_flags(),
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": true, "schemata": true, "monitoring": true},
            "memoryPolicy": {"modes": MEMORY_POLICY_MODES, "flags": MEMORY_POLICY_FLAGS},
            "mountExtensions": {"idmap": {"enabled": false}},
            "netDevices": {"enabled": true},
        },
        "annotations": annotations,
        // Neither skiff nor libcontainer changes behaviour on any annotation.
        "potentiallyUnsafeConfigAnnotations": [],
    })
}

fn supported_archs() -> Vec<&'static str> {
    SECCOMP_ARCHS
        .iter()
        .copied()
        .filter(|name| libseccomp::knows_arch(name))
        .collect()
}

fn supported_flags() -> Vec<&'static str> {
    let api = libseccomp::api_level();
    SECCOMP_FLAGS
        .iter()
        .filter(|f| api >= f.api_level && kernel_accepts_filter_flags(f.kernel_bits))
        .map(|f| f.name)
        .collect()
}

/// Asks the kernel whether it knows these filter flags, the way libseccomp
/// and runc do: with no program, a known flag set fails with EFAULT (the
/// program could not be read) and an unknown one with EINVAL. Nothing is installed.
fn kernel_accepts_filter_flags(bits: libc::c_ulong) -> bool {
    // SAFETY: the program pointer is NULL, so the kernel only validates the
    // flags and fails copying the program; no filter is ever installed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bits,
            std::ptr::null::<libc::c_void>(),
        )
    };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The few facts about the linked libseccomp (libcontainer links it) that
/// its Rust binding does not expose to skiff.
mod libseccomp {
    use std::ffi::CString;

    #[repr(C)]
    struct ScmpVersion {
        major: libc::c_uint,
        minor: libc::c_uint,
        micro: libc::c_uint,
    }

    extern "C" {
        fn seccomp_version() -> *const ScmpVersion;
        fn seccomp_api_get() -> libc::c_uint;
        fn seccomp_arch_resolve_name(name: *const libc::c_char) -> u32;
    }

    pub fn version() -> Option<String> {
        // SAFETY: seccomp_version takes no arguments and returns a pointer to
        // a static struct inside libseccomp (or NULL).
        let v = unsafe { seccomp_version() };
        // SAFETY: a non-NULL result points to libseccomp's static, immutable version struct.
        let v = unsafe { v.as_ref() }?;
        Some(format!("{}.{}.{}", v.major, v.minor, v.micro))
    }

    pub fn api_level() -> u32 {
        // SAFETY: seccomp_api_get takes no arguments; it probes the kernel once and caches the level.
        unsafe { seccomp_api_get() }
    }

    /// Whether libseccomp knows an architecture, given as "SCMP_ARCH_X86_64".
    pub fn knows_arch(name: &str) -> bool {
        let short = name.trim_start_matches("SCMP_ARCH_").to_ascii_lowercase();
        let Ok(c) = CString::new(short) else {
            return false;
        };
        // SAFETY: `c` is a NUL-terminated string that outlives the call, which only reads it.
        unsafe { seccomp_arch_resolve_name(c.as_ptr()) != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name must be one the runtime-spec types know.
    #[test]
    fn document_uses_spec_names() -> Result<()> {
        let doc = document();
        let parsed: oci_spec::runtime::Features = serde_json::from_value(doc.clone())?;
        assert_eq!(serde_json::to_value(&parsed)?, doc);
        for cap in CAPABILITIES {
            let c: oci_spec::runtime::Capability = serde_json::from_value(json!(cap))?;
            assert_eq!(serde_json::to_value(c)?, json!(cap));
        }
        Ok(())
    }

    #[test]
    fn host_libseccomp_answers() {
        assert!(libseccomp::version().is_some());
        assert!(libseccomp::api_level() >= 1);
        assert!(libseccomp::knows_arch("SCMP_ARCH_X86_64"));
        assert!(!libseccomp::knows_arch("SCMP_ARCH_NOPE"));
    }
}
