//! What a build is asked to do, already parsed from the command line: outputs, named
//! contexts, network and progress modes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{BuildError, Result};

/// Where the built image goes besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI archive (tar of an OCI image layout).
    Oci(PathBuf),
    /// A `docker save` archive.
    Docker(PathBuf),
    /// The final root filesystem as a directory.
    Local(PathBuf),
}

impl Output {
    /// Parses `type=oci|docker|local,dest=PATH`.
    pub fn parse(spec: &str) -> Result<Output> {
        let bad = |reason: String| BuildError::Option {
            option: "--output",
            reason,
        };
        let mut kind = None;
        let mut dest = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) if !v.is_empty() => dest = Some(PathBuf::from(v)),
                _ => return Err(bad(format!("{spec:?}: unknown field {field:?}"))),
            }
        }
        let dest = dest.ok_or_else(|| bad(format!("{spec:?}: dest=PATH is required")))?;
        match kind {
            Some("oci") => Ok(Output::Oci(dest)),
            Some("docker") => Ok(Output::Docker(dest)),
            Some("local") => Ok(Output::Local(dest)),
            other => Err(bad(format!(
                "{spec:?}: type must be oci, docker or local (got {})",
                other.unwrap_or("nothing")
            ))),
        }
    }
}

/// `--output type=registry[,name=NAME]` (or BuildKit's `type=image,name=NAME,push=true`):
/// push the image, to NAME or else to its -t names. None when `spec` is another output.
pub fn registry_output(spec: &str) -> Option<Result<Option<String>>> {
    let fields: Vec<(&str, &str)> = spec
        .split(',')
        .map(|f| f.split_once('=').unwrap_or((f, "")))
        .collect();
    let kind = fields.iter().find(|(k, _)| *k == "type").map(|(_, v)| *v);
    let push = fields.contains(&("push", "true"));
    if !(kind == Some("registry") || kind == Some("image") && push) {
        return None;
    }
    let mut name = None;
    for (k, v) in &fields {
        match *k {
            "type" | "push" => {}
            "name" if !v.is_empty() => name = Some((*v).to_owned()),
            _ => {
                return Some(Err(BuildError::Option {
                    option: "--output",
                    reason: format!("{spec:?}: unknown field {k:?} (type=registry takes name=)"),
                }))
            }
        }
    }
    Some(Ok(name))
}

/// Where a named build context's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// An OCI layout directory and the ref name to pick (the only image when None).
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// A `docker save` archive.
    DockerArchive(PathBuf),
}

/// `--build-context NAME=SOURCE`: what FROM or `COPY --from` NAME means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedContext {
    pub name: String,
    pub source: ContextSource,
}

impl NamedContext {
    /// Parses `NAME=oci-layout://PATH[:TAG]` or `NAME=docker-archive://FILE`.
    pub fn parse(spec: &str) -> Result<NamedContext> {
        let bad = |reason: String| BuildError::Option {
            option: "--build-context",
            reason,
        };
        let (name, value) = spec
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| bad(format!("{spec:?}: expected NAME=SOURCE")))?;
        let source = if let Some(rest) = value.strip_prefix("oci-layout://") {
            let (dir, tag) = skiff_specs::archive::parse_layout_ref(rest);
            ContextSource::OciLayout { dir, tag }
        } else if let Some(rest) = value.strip_prefix("docker-archive://") {
            ContextSource::DockerArchive(PathBuf::from(rest))
        } else {
            return Err(bad(format!(
                "{spec:?}: the source must be oci-layout://PATH[:TAG] or docker-archive://FILE \
                 (local directories and registries are not supported yet)"
            )));
        };
        Ok(NamedContext {
            name: name.to_owned(),
            source,
        })
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Plain,
    /// Step lines, with a live tail of each running RUN's output.
    Tty,
}

/// The network of RUN steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// A fresh network namespace with loopback only.
    None,
    /// The host's network namespace.
    Host,
}

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// The Dockerfile (default CONTEXT/Dockerfile).
    pub dockerfile: PathBuf,
    /// Names for the image in the store (`name` alone means `name:latest`).
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub progress: ProgressMode,
    pub outputs: Vec<Output>,
    pub contexts: Vec<NamedContext>,
    /// The OCI runtime binary for RUN steps.
    pub runtime: PathBuf,
    pub store: PathBuf,
    pub network: NetworkMode,
    /// --label: labels set on the final image over those of its Dockerfile.
    pub labels: BTreeMap<String, String>,
    /// --secret: id → file, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// How new layers are compressed in the store and OCI outputs (docker outputs are
    /// always gzip).
    pub compression: crate::compress::LayerCompression,
    /// Where the build's scratch space (snapshots, unpacked layers) lives.
    pub scratch: ScratchMemory,
    /// How to reach registries for FROM images the store lacks.
    pub registry: skiff_specs::registry::ClientOptions,
}

/// `--scratch-memory`: the build's scratch space in memory (a tmpfs) or on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchMemory {
    /// Half the memory available when the build starts, if that is at least 1 GiB.
    Auto,
    /// At most this many bytes of memory; 0 means on disk.
    Limit(u64),
}

impl ScratchMemory {
    /// `auto`, `0`, or a size in bytes with an optional K, M or G (binary) suffix.
    pub fn parse(text: &str) -> Result<ScratchMemory> {
        let bad = || BuildError::Option {
            option: "--scratch-memory",
            reason: format!("{text:?}: expected auto, 0 (disk) or a size like 512M or 4G"),
        };
        if text == "auto" {
            return Ok(ScratchMemory::Auto);
        }
        let (digits, shift) = match text.as_bytes().last() {
            Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
            Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
            Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
            _ => (text, 0),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        n.checked_mul(1 << shift)
            .map(ScratchMemory::Limit)
            .ok_or_else(bad)
    }
}

/// Parses `id=ID,src=PATH` (`source=` too; `type=file` allowed) of --secret.
pub fn parse_secrets(specs: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let bad = |reason: &str| BuildError::Option {
            option: "--secret",
            reason: format!("{spec:?}: {reason}"),
        };
        let mut id = None;
        let mut src = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) if !v.is_empty() => id = Some(v.to_owned()),
                Some(("src" | "source", v)) if !v.is_empty() => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => return Err(bad(&format!("unknown field {field:?}"))),
            }
        }
        let id = id.ok_or_else(|| bad("id= is required"))?;
        let src = src.ok_or_else(|| bad("src=PATH is required"))?;
        if !src.is_file() {
            return Err(bad(&format!("{} is not a readable file", src.display())));
        }
        out.insert(id, src);
    }
    Ok(out)
}

/// Checks --platform: only the host's platform can be built (no emulation).
pub fn check_platform(spec: &str) -> Result<()> {
    let bad = |reason: String| BuildError::Option {
        option: "--platform",
        reason,
    };
    let host = crate::frontend::Platform::host();
    for one in spec.split(',') {
        let p = crate::frontend::Platform::parse(one.trim()).map_err(bad)?;
        let same_variant = p.variant.is_none() || p.variant == host.variant;
        if p.os != host.os || p.arch != host.arch || !same_variant {
            return Err(bad(format!(
                "{one}: only the host platform ({host}) can be built here"
            )));
        }
    }
    Ok(())
}

/// Parses `KEY=VALUE` of --label (the value may be empty).
pub fn parse_labels(specs: &[String]) -> Result<BTreeMap<String, String>> {
    specs
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(BuildError::Option {
                option: "--label",
                reason: format!("{spec:?}: expected KEY=VALUE"),
            }),
        })
        .collect()
}

/// Parses `KEY=VALUE` of --build-arg (a bare KEY takes the value from the environment, as
/// docker build does; unset, it is skipped).
pub fn parse_build_args(specs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        match spec.split_once('=') {
            Some(("", _)) => {
                return Err(BuildError::Option {
                    option: "--build-arg",
                    reason: format!("{spec:?}: empty name"),
                })
            }
            Some((k, v)) => {
                out.insert(k.to_owned(), v.to_owned());
            }
            None => {
                if let Ok(v) = std::env::var(spec) {
                    out.insert(spec.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs() -> Result<()> {
        assert_eq!(
            Output::parse("type=oci,dest=/tmp/x.tar")?,
            Output::Oci("/tmp/x.tar".into())
        );
        assert_eq!(
            Output::parse("dest=d,type=local")?,
            Output::Local("d".into())
        );
        assert!(Output::parse("type=registry,dest=x").is_err());
        assert!(Output::parse("type=oci").is_err());
        Ok(())
    }

    #[test]
    fn registry_outputs() -> Result<()> {
        assert!(registry_output("type=oci,dest=x").is_none());
        assert!(registry_output("type=image,name=a").is_none());
        assert_eq!(registry_output("type=registry").transpose()?, Some(None));
        assert_eq!(
            registry_output("type=image,name=h:5000/a:1,push=true").transpose()?,
            Some(Some("h:5000/a:1".to_owned()))
        );
        assert!(registry_output("type=registry,dest=x").is_some_and(|r| r.is_err()));
        Ok(())
    }

    #[test]
    fn platforms_and_labels() -> Result<()> {
        let host = crate::frontend::Platform::host();
        check_platform(&host.to_string())?;
        assert!(check_platform("linux/s390x").is_err() || host.arch == "s390x");
        assert!(check_platform("nonsense").is_err());
        let labels = parse_labels(&["a=1".into(), "b=".into()])?;
        assert_eq!(labels.get("b").map(String::as_str), Some(""));
        assert!(parse_labels(&["novalue".into()]).is_err());
        Ok(())
    }

    #[test]
    fn secrets() -> Result<()> {
        let dir = tempfile::tempdir().map_err(BuildError::io("tempdir"))?;
        let file = dir.path().join("tok");
        std::fs::write(&file, "s3cret").map_err(BuildError::io(&file))?;
        let parsed = parse_secrets(&[format!("id=tok,src={}", file.display())])?;
        assert_eq!(parsed.get("tok"), Some(&file));
        assert!(parse_secrets(&["src=/x".into()]).is_err());
        assert!(parse_secrets(&["id=a,src=/nonexistent/x".into()]).is_err());
        Ok(())
    }

    #[test]
    fn contexts() -> Result<()> {
        let c = NamedContext::parse("bb=oci-layout:///nonexistent/bb:latest")?;
        assert_eq!(c.name, "bb");
        assert_eq!(
            c.source,
            ContextSource::OciLayout {
                dir: "/nonexistent/bb".into(),
                tag: Some("latest".into())
            }
        );
        assert!(NamedContext::parse("bb=/some/dir").is_err());
        assert!(NamedContext::parse("=oci-layout:///x").is_err());
        Ok(())
    }
}
