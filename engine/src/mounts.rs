//! `-v`, `--mount` and `--tmpfs` in docker's syntaxes. Errors name the flag
//! and the value.

use anyhow::{bail, Result};

use crate::container::record::{MountKind, MountSpec};
use crate::ids::valid_name;

/// `-v SOURCE:TARGET[:OPTIONS]` or `-v TARGET` (an anonymous volume).
pub fn parse_volume_flag(value: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = value.split(':').collect();
    let bad = |why: &str| anyhow::anyhow!("invalid -v value {value:?}: {why}");
    let (source, target, options) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => return Err(bad("too many colons")),
    };
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let mut spec = MountSpec {
        kind: MountKind::Volume,
        source: source.to_owned(),
        target: clean_target(target),
        read_only: false,
        no_copy: false,
        tmpfs_options: String::new(),
    };
    if source.starts_with('/') {
        spec.kind = MountKind::Bind;
    } else if !source.is_empty() && !valid_name(source) {
        return Err(bad(
            "the volume name includes invalid characters (a host path must be absolute)",
        ));
    }
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => spec.read_only = true,
            "rw" => spec.read_only = false,
            "nocopy" => spec.no_copy = true,
            // SELinux relabelling and propagation flags: nothing to do here.
            "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "rshared" | "shared"
            | "delegated" | "cached" | "consistent" => {}
            other => return Err(bad(&format!("unknown option {other:?}"))),
        }
    }
    Ok(spec)
}

/// `--mount type=…,source=…,target=…[,readonly][,volume-nocopy][,tmpfs-size=…]`.
pub fn parse_mount_flag(value: &str) -> Result<MountSpec> {
    let bad = |why: &str| anyhow::anyhow!("invalid --mount value {value:?}: {why}");
    let mut kind = MountKind::Volume;
    let mut source = String::new();
    let mut target = String::new();
    let mut read_only = false;
    let mut no_copy = false;
    let mut tmpfs = Vec::new();
    for field in value.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        let truthy = |v: &str| matches!(v, "" | "1" | "true");
        match k {
            "type" => {
                kind = match v {
                    "volume" => MountKind::Volume,
                    "bind" => MountKind::Bind,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => return Err(bad(&format!("unknown type {v:?}"))),
                }
            }
            "source" | "src" => source = v.to_owned(),
            "target" | "destination" | "dst" => target = v.to_owned(),
            "readonly" | "ro" => read_only = truthy(v),
            "volume-nocopy" => no_copy = truthy(v),
            "tmpfs-size" => tmpfs.push(format!(
                "size={}",
                crate::spec::resources::parse_bytes(v, "--mount tmpfs-size")?
            )),
            "tmpfs-mode" => tmpfs.push(format!("mode={v}")),
            "bind-propagation" | "consistency" | "volume-driver" => {}
            _ => return Err(bad(&format!("unknown field {k:?}"))),
        }
    }
    if !target.starts_with('/') {
        return Err(bad("target must be an absolute path"));
    }
    match kind {
        MountKind::Bind if !source.starts_with('/') => {
            return Err(bad("a bind source must be an absolute host path"))
        }
        MountKind::Volume if !source.is_empty() && !valid_name(&source) => {
            return Err(bad("the volume name includes invalid characters"))
        }
        MountKind::Tmpfs if !source.is_empty() => return Err(bad("a tmpfs mount takes no source")),
        _ => {}
    }
    Ok(MountSpec {
        kind,
        source,
        target: clean_target(&target),
        read_only,
        no_copy,
        tmpfs_options: tmpfs.join(","),
    })
}

/// `--tmpfs /path[:options]`.
pub fn parse_tmpfs_flag(value: &str) -> Result<MountSpec> {
    let (target, options) = value.split_once(':').unwrap_or((value, ""));
    if !target.starts_with('/') {
        bail!("invalid --tmpfs value {value:?}: the path must be absolute");
    }
    let mut read_only = false;
    let opts: Vec<&str> = options
        .split(',')
        .filter(|o| !o.is_empty())
        .filter(|o| {
            if *o == "ro" {
                read_only = true;
                false
            } else {
                *o != "rw"
            }
        })
        .collect();
    Ok(MountSpec {
        kind: MountKind::Tmpfs,
        source: String::new(),
        target: clean_target(target),
        read_only,
        no_copy: false,
        tmpfs_options: opts.join(","),
    })
}

/// `/data/` -> `/data`; `/` stays.
fn clean_target(t: &str) -> String {
    let trimmed = t.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() -> Result<()> {
        let m = parse_volume_flag("data:/var/lib/db:ro")?;
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str(), m.read_only),
            (MountKind::Volume, "data", "/var/lib/db", true)
        );
        let m = parse_volume_flag("/srv/x:/x")?;
        assert_eq!(m.kind, MountKind::Bind);
        let m = parse_volume_flag("/anon/")?;
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str()),
            (MountKind::Volume, "", "/anon")
        );
        for bad in ["rel/path:/x", "a:b", "a:/b:frob", "a:/b:c:d"] {
            let e = parse_volume_flag(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("-v") && e.contains(bad), "{bad}: {e}");
        }
        Ok(())
    }

    #[test]
    fn mount_and_tmpfs_flags() -> Result<()> {
        let m = parse_mount_flag("type=bind,src=/h,dst=/c,readonly")?;
        assert_eq!((m.kind, m.read_only), (MountKind::Bind, true));
        let m = parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770")?;
        assert_eq!(m.tmpfs_options, "size=1048576,mode=1770");
        assert!(parse_mount_flag("type=bind,src=rel,dst=/c").is_err());
        assert!(parse_mount_flag("type=nfs,dst=/c").is_err());
        let m = parse_tmpfs_flag("/run:rw,size=64k")?;
        assert_eq!(
            (m.target.as_str(), m.tmpfs_options.as_str()),
            ("/run", "size=64k")
        );
        assert!(parse_tmpfs_flag("run").is_err());
        Ok(())
    }
}
