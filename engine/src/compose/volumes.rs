//! Service volumes. Short syntax `[SOURCE:]TARGET[:OPTIONS]`: a source
//! starting with `/`, `.` or `~` is a bind mount (relative ones against the
//! project directory, `~` against HOME), any other a named volume, none an
//! anonymous volume; options `ro`, `rw`, `z`, `Z`, `nocopy` and the bind
//! propagations. Long syntax `{type, source, target, read_only, bind,
//! volume, tmpfs}` for volume, bind and tmpfs mounts.

use std::path::Path;

use serde_yaml::Value;

use super::error::Result;
use super::model::{ServiceVolume, VolumeBind, VolumeOptions, VolumeTmpfs};
use super::paths;
use super::reader::{Reader, Spec};

const LONG: Spec = Spec {
    known: &[
        "type",
        "source",
        "target",
        "read_only",
        "bind",
        "volume",
        "tmpfs",
    ],
    unsupported: &[],
    ignored: &["consistency"],
};
const BIND: Spec = Spec {
    known: &["propagation", "create_host_path", "selinux"],
    unsupported: &[],
    ignored: &[],
};
const VOLUME: Spec = Spec {
    known: &["nocopy", "subpath"],
    unsupported: &[],
    ignored: &[],
};
const TMPFS: Spec = Spec {
    known: &["size", "mode"],
    unsupported: &[],
    ignored: &[],
};

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// One entry of a service's `volumes`.
pub(crate) fn parse_entry(
    r: &mut Reader,
    value: &Value,
    path: &str,
    base: &Path,
    home: &Path,
) -> Result<ServiceVolume> {
    match value {
        Value::String(spec) => parse_short(r, spec, path, base, home),
        Value::Mapping(_) => parse_long(r, value, path, base, home),
        other => Err(r.err(
            path,
            format!(
                "a volume must be a string or a mapping, not {}",
                super::yaml::kind(other)
            ),
        )),
    }
}

fn parse_short(
    r: &mut Reader,
    spec: &str,
    path: &str,
    base: &Path,
    home: &Path,
) -> Result<ServiceVolume> {
    let file = r.file.clone();
    let invalid = |why: &str| {
        super::error::ComposeError::field(&file, path, format!("invalid volume {spec:?}: {why}"))
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, o] => (Some(*s), *t, Some(*o)),
        _ => return Err(invalid("use [SOURCE:]TARGET[:OPTIONS]")),
    };
    if !target.starts_with('/') {
        return Err(invalid("the target must be an absolute path"));
    }
    let mut v = match source {
        None => volume(None, target),
        Some("") => return Err(invalid("empty source")),
        Some(s) if is_path(s) => ServiceVolume {
            kind: "bind".to_owned(),
            source: Some(paths::resolve(s, base, home)),
            target: target.to_owned(),
            read_only: false,
            // The short syntax always creates a missing host directory (docker's -v).
            bind: Some(VolumeBind {
                create_host_path: true,
                ..VolumeBind::default()
            }),
            volume: None,
            tmpfs: None,
        },
        Some(s) => {
            check_volume_name(s).map_err(|m| invalid(&m))?;
            volume(Some(s.to_owned()), target)
        }
    };
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        match option {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" if v.kind == "bind" => {
                v.bind.get_or_insert_with(VolumeBind::default).selinux = Some(option.to_owned());
            }
            "nocopy" if v.kind == "volume" => {
                v.volume.get_or_insert_with(VolumeOptions::default).nocopy = true;
            }
            p if PROPAGATIONS.contains(&p) && v.kind == "bind" => {
                v.bind.get_or_insert_with(VolumeBind::default).propagation = Some(p.to_owned());
            }
            "cached" | "delegated" | "consistent" => {
                r.warn(format!(
                    "{}: {path}: volume option {option:?} has no effect on Linux and is ignored",
                    r.file
                ));
            }
            other => {
                return Err(invalid(&format!(
                    "unknown option {other:?} for a {} mount",
                    v.kind
                )))
            }
        }
    }
    Ok(v)
}

fn volume(source: Option<String>, target: &str) -> ServiceVolume {
    ServiceVolume {
        kind: "volume".to_owned(),
        source,
        target: target.to_owned(),
        read_only: false,
        bind: None,
        volume: None,
        tmpfs: None,
    }
}

fn parse_long(
    r: &mut Reader,
    value: &Value,
    path: &str,
    base: &Path,
    home: &Path,
) -> Result<ServiceVolume> {
    let f = r.fields(value, path, &LONG)?;
    let kind = r
        .opt_string(&f, "type")?
        .ok_or_else(|| r.err(path, "a volume needs a type (volume, bind or tmpfs)"))?;
    let target = r
        .opt_string(&f, "target")?
        .ok_or_else(|| r.err(path, "a volume needs a target"))?;
    if !target.starts_with('/') {
        return Err(r.err(
            &f.path("target"),
            format!("the target {target:?} must be an absolute path"),
        ));
    }
    let source = r.opt_string(&f, "source")?.filter(|s| !s.is_empty());
    let mut v = ServiceVolume {
        kind: kind.clone(),
        source: None,
        target,
        read_only: r.flag(&f, "read_only")?,
        bind: None,
        volume: None,
        tmpfs: None,
    };
    for (name, allowed) in [("bind", "bind"), ("volume", "volume"), ("tmpfs", "tmpfs")] {
        if f.has(name) && kind != allowed {
            return Err(r.err(
                &f.path(name),
                format!("{name} options do not apply to a {kind} mount"),
            ));
        }
    }
    match kind.as_str() {
        "bind" => {
            let s = source.ok_or_else(|| r.err(path, "a bind mount needs a source"))?;
            v.source = Some(paths::resolve(&s, base, home));
            if let Some(b) = f.get("bind") {
                let bf = r.fields(b, &f.path("bind"), &BIND)?;
                let propagation = r.opt_string(&bf, "propagation")?;
                if let Some(p) = &propagation {
                    if !PROPAGATIONS.contains(&p.as_str()) {
                        return Err(r.err(
                            &bf.path("propagation"),
                            format!(
                                "invalid propagation {p:?}: use one of {}",
                                PROPAGATIONS.join(", ")
                            ),
                        ));
                    }
                }
                let selinux = r.opt_string(&bf, "selinux")?;
                if let Some(s) = &selinux {
                    if s != "z" && s != "Z" {
                        return Err(r.err(
                            &bf.path("selinux"),
                            format!("invalid selinux {s:?}: use z or Z"),
                        ));
                    }
                }
                v.bind = Some(VolumeBind {
                    propagation,
                    create_host_path: r.flag(&bf, "create_host_path")?,
                    selinux,
                });
            }
            if v.bind.as_ref().is_some_and(|b| *b == VolumeBind::default()) {
                v.bind = None;
            }
        }
        "volume" => {
            if let Some(s) = &source {
                check_volume_name(s).map_err(|m| r.err(&f.path("source"), m))?;
            }
            v.source = source;
            if let Some(o) = f.get("volume") {
                let of = r.fields(o, &f.path("volume"), &VOLUME)?;
                let opts = VolumeOptions {
                    nocopy: r.flag(&of, "nocopy")?,
                    subpath: r.opt_string(&of, "subpath")?,
                };
                if opts != VolumeOptions::default() {
                    v.volume = Some(opts);
                }
            }
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(r.err(&f.path("source"), "a tmpfs mount has no source"));
            }
            if let Some(t) = f.get("tmpfs") {
                let tf = r.fields(t, &f.path("tmpfs"), &TMPFS)?;
                let size = tf
                    .get("size")
                    .map(|s| super::bytes::parse_value(s).map_err(|m| r.err(&tf.path("size"), m)))
                    .transpose()?;
                let mode = tf
                    .get("mode")
                    .map(|m| r.mode(m, &tf.path("mode")))
                    .transpose()?;
                let opts = VolumeTmpfs { size, mode };
                if opts != VolumeTmpfs::default() {
                    v.tmpfs = Some(opts);
                }
            }
        }
        "npipe" | "cluster" | "image" => {
            return Err(r.err(
                &f.path("type"),
                format!("volume type {kind:?} is not supported by skiffctl"),
            ))
        }
        other => {
            return Err(r.err(
                &f.path("type"),
                format!("unknown volume type {other:?}: use volume, bind or tmpfs"),
            ))
        }
    }
    Ok(v)
}

fn is_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// Volume names as docker allows them.
pub(crate) fn check_volume_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(format!(
            "invalid volume name {name:?}: use letters, digits, '_', '.' and '-' (a path must start with '/', '.' or '~')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> std::result::Result<ServiceVolume, String> {
        let v: Value = serde_yaml::from_str(value).expect("yaml");
        let mut w = Vec::new();
        let mut r = Reader {
            file: "compose.yaml".to_owned(),
            warnings: &mut w,
        };
        parse_entry(
            &mut r,
            &v,
            "services.web.volumes[0]",
            Path::new("/proj"),
            Path::new("/home/me"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn short_syntax() {
        let v = parse("data:/var/lib/data").expect("ok");
        assert_eq!(
            (v.kind.as_str(), v.source.as_deref(), v.target.as_str()),
            ("volume", Some("data"), "/var/lib/data")
        );
        let v = parse("/var/lib/data").expect("ok");
        assert_eq!((v.kind.as_str(), v.source), ("volume", None));
        let v = parse("./static:/usr/share/nginx/html:ro").expect("ok");
        assert_eq!(v.kind, "bind");
        assert_eq!(v.source.as_deref(), Some("/proj/static"));
        assert!(v.read_only);
        assert!(v.bind.as_ref().is_some_and(|b| b.create_host_path));
        let v = parse("../up/x:/x:rw,z,rshared").expect("ok");
        assert_eq!(v.source.as_deref(), Some("/up/x"));
        let b = v.bind.expect("bind");
        assert_eq!(
            (b.selinux.as_deref(), b.propagation.as_deref()),
            (Some("z"), Some("rshared"))
        );
        let v = parse("~/configs:/etc/configs/:ro").expect("ok");
        assert_eq!(v.source.as_deref(), Some("/home/me/configs"));
        let v = parse("cache:/cache:nocopy").expect("ok");
        assert!(v.volume.is_some_and(|o| o.nocopy));
    }

    #[test]
    fn long_syntax() {
        let v = parse("{type: bind, source: ./src, target: /app, read_only: true, bind: {create_host_path: true}}").expect("ok");
        assert_eq!(v.source.as_deref(), Some("/proj/src"));
        assert!(v.read_only);
        let v =
            parse("{type: volume, source: db, target: /db, volume: {nocopy: true}}").expect("ok");
        assert!(v.volume.is_some_and(|o| o.nocopy));
        let v =
            parse("{type: tmpfs, target: /tmp, tmpfs: {size: 64m, mode: \"1777\"}}").expect("ok");
        assert_eq!(
            v.tmpfs,
            Some(VolumeTmpfs {
                size: Some(64 << 20),
                mode: Some(0o1777)
            })
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse("a:b:c:d").expect_err("must fail"),
            "compose.yaml: services.web.volumes[0]: invalid volume \"a:b:c:d\": use [SOURCE:]TARGET[:OPTIONS]"
        );
        assert!(parse("data:relative")
            .expect_err("must fail")
            .contains("absolute"));
        assert!(parse("data:/x:bogus")
            .expect_err("must fail")
            .contains("unknown option \"bogus\""));
        assert!(parse("data:/x:z")
            .expect_err("must fail")
            .contains("unknown option \"z\" for a volume mount"));
        assert!(parse("{type: bind, target: /x}")
            .expect_err("must fail")
            .contains("needs a source"));
        assert!(parse("{type: npipe, source: x, target: /x}")
            .expect_err("must fail")
            .contains("not supported by skiffctl"));
        assert!(parse("{type: volume, target: /x, bind: {}}")
            .expect_err("must fail")
            .contains("do not apply"));
        assert_eq!(
            parse("{type: volume, target: /x, sourc: a}").expect_err("must fail"),
            "compose.yaml: services.web.volumes[0].sourc: unknown field \"sourc\""
        );
        assert!(parse("\"bad name!:/x\"")
            .expect_err("must fail")
            .contains("invalid volume name"));
    }
}
