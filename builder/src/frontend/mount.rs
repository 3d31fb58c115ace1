//! `RUN --mount=type=...,key=value,...`: a CSV list of options, parsed into a typed mount.

use super::directives::parse_bool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// `target`, `dst`, `destination`.
    pub target: Option<String>,
    /// `source`, `src`: path in `from` (bind, cache), or the secret id.
    pub source: Option<String>,
    /// Stage name, stage index or image the source comes from (bind, cache).
    pub from: Option<String>,
    /// Cache id or secret/ssh id.
    pub id: Option<String>,
    /// Cache sharing; only for cache mounts.
    pub sharing: Option<Sharing>,
    /// File mode, octal (cache, secret, ssh).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Defaults: read-only for bind, secret and ssh; writable for cache and tmpfs.
    pub readonly: bool,
    /// Secret/ssh: fail when the secret is not provided.
    pub required: bool,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// Secret: also expose it as this environment variable.
    pub env: Option<String>,
}

impl Mount {
    /// The cache's identity: its `id`, else its target.
    pub fn cache_id(&self) -> Option<&str> {
        self.id.as_deref().or(self.target.as_deref())
    }

    /// A secret's id: `id`, else `source`, else the target's file name.
    pub fn secret_id(&self) -> Option<&str> {
        self.id.as_deref().or(self.source.as_deref()).or_else(|| {
            self.target
                .as_deref()
                .and_then(|t| t.rsplit('/').find(|s| !s.is_empty()))
        })
    }

    /// Where a secret appears: its target, else `/run/secrets/<id>`.
    pub fn secret_target(&self) -> Option<String> {
        self.target
            .clone()
            .or_else(|| self.secret_id().map(|id| format!("/run/secrets/{id}")))
    }

    /// Sharing mode of a cache mount (`shared` unless set).
    pub fn effective_sharing(&self) -> Sharing {
        self.sharing.unwrap_or(Sharing::Shared)
    }

    /// Parses a mount spec without expanding variables.
    pub fn parse(spec: &str) -> Result<Mount, String> {
        Mount::parse_with(spec, &|v: &str| Ok(v.to_string()))
    }

    /// Parses a mount spec, passing every `key=value` value through `expand` first.
    pub fn parse_with(
        spec: &str,
        expand: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Mount, String> {
        let fields = split_csv(spec)?;
        let mut pairs = Vec::with_capacity(fields.len());
        for field in &fields {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
                None => (field.to_ascii_lowercase(), None),
            };
            const KEYS: [&str; 19] = [
                "type",
                "from",
                "source",
                "src",
                "target",
                "dst",
                "destination",
                "readonly",
                "ro",
                "readwrite",
                "rw",
                "id",
                "sharing",
                "required",
                "size",
                "mode",
                "uid",
                "gid",
                "env",
            ];
            if !KEYS.contains(&key.as_str()) {
                return Err(format!("unexpected key '{key}' in '{field}'"));
            }
            let value = value.map(expand).transpose()?;
            pairs.push((key, value));
        }
        // The type decides which keys are allowed, wherever it appears.
        let mut kind = MountType::Bind;
        for (key, value) in &pairs {
            if key == "type" {
                let v = value.as_deref().unwrap_or_default();
                kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(format!("unsupported mount type {v:?}")),
                };
            }
        }
        let mut m = Mount {
            kind,
            target: None,
            source: None,
            from: None,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            readonly: false,
            required: false,
            size: None,
            env: None,
        };
        let mut readonly = None;
        let secretish = matches!(kind, MountType::Secret | MountType::Ssh);
        let ty = kind.as_str();
        for (key, value) in pairs {
            let Some(value) = value else {
                match key.as_str() {
                    "readonly" | "ro" => readonly = Some(true),
                    "readwrite" | "rw" => readonly = Some(false),
                    "required" if secretish => m.required = true,
                    "required" => {
                        return Err(format!("unexpected key 'required' for mount type '{ty}'"))
                    }
                    _ => return Err(format!("missing a value for mount option '{key}'")),
                }
                continue;
            };
            let boolean =
                |v: &str| parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"));
            let number = |v: &str, radix: u32| {
                u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {key}: {v}"))
            };
            match key.as_str() {
                "type" => {}
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => readonly = Some(boolean(&value)?),
                "readwrite" | "rw" => readonly = Some(!boolean(&value)?),
                "required" if secretish => m.required = boolean(&value)?,
                "required" => {
                    return Err(format!("unexpected key 'required' for mount type '{ty}'"))
                }
                "id" => m.id = Some(value),
                "sharing" => {
                    m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        _ => return Err(format!("unsupported sharing value {value:?}")),
                    })
                }
                "size" if kind == MountType::Tmpfs => m.size = Some(ram_in_bytes(&value)?),
                "size" => return Err(format!("unexpected key 'size' for mount type '{ty}'")),
                "mode" => m.mode = Some(number(&value, 8)?),
                "uid" => m.uid = Some(number(&value, 10)?),
                "gid" => m.gid = Some(number(&value, 10)?),
                _ => m.env = Some(value),
            }
        }
        if !matches!(kind, MountType::Cache | MountType::Secret | MountType::Ssh) {
            for (name, set) in [
                ("mode", m.mode.is_some()),
                ("uid", m.uid.is_some()),
                ("gid", m.gid.is_some()),
            ] {
                if set {
                    return Err(format!("{name} not allowed for \"{ty}\" type mounts"));
                }
            }
        }
        if m.sharing.is_some() && kind != MountType::Cache {
            return Err(format!("invalid cache sharing set for {ty} mount"));
        }
        m.readonly = readonly.unwrap_or(!matches!(kind, MountType::Cache | MountType::Tmpfs));
        match kind {
            MountType::Secret => {
                if m.from.is_some() {
                    return Err("secret mount should not have a from".to_string());
                }
                if m.source.is_none() && m.target.is_none() && m.id.is_none() {
                    return Err(
                        "invalid secret mount: one of id, source or target is required".to_string(),
                    );
                }
                if m.source.is_some() && m.id.is_some() {
                    return Err("both source and id can't be set".to_string());
                }
            }
            MountType::Ssh => {}
            _ => {
                if m.target.as_deref().is_none_or(str::is_empty) {
                    return Err(format!("{ty} mount requires a target"));
                }
            }
        }
        Ok(m)
    }
}

/// One CSV record as Go's encoding/csv reads it: fields split at commas, a field that starts
/// with `"` is quoted (`""` is a quote inside it), a quote elsewhere is an error.
fn split_csv(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in mount spec {s:?}")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(format!("extraneous text after a quoted field in {s:?}")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err(format!("bare \" in non-quoted field in {s:?}")),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// A size like `64m`, `1.5g`, `100MiB`, `4096` in bytes (binary units, as docker's units).
fn ram_in_bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: {s:?}");
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_len);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_defaults() -> Result<(), String> {
        let m = Mount::parse("type=cache,target=/root/.cache,sharing=locked,mode=0755,uid=1")?;
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(m.cache_id(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(Sharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1));
        Ok(())
    }

    #[test]
    fn bind_is_readonly_unless_rw() -> Result<(), String> {
        assert!(Mount::parse("target=/x")?.readonly);
        assert!(!Mount::parse("target=/x,rw")?.readonly);
        assert!(!Mount::parse("target=/x,readonly=false")?.readonly);
        assert_eq!(
            Mount::parse("\"target=/a,b\",from=build,source=/out")?
                .target
                .as_deref(),
            Some("/a,b")
        );
        Ok(())
    }

    #[test]
    fn secrets() -> Result<(), String> {
        let m = Mount::parse("type=secret,id=tok,required")?;
        assert!(m.required && m.readonly);
        assert_eq!(m.secret_target().as_deref(), Some("/run/secrets/tok"));
        let m = Mount::parse("type=secret,target=/etc/key")?;
        assert_eq!(m.secret_id(), Some("key"));
        Ok(())
    }

    #[test]
    fn tmpfs_size() -> Result<(), String> {
        assert_eq!(
            Mount::parse("type=tmpfs,target=/t,size=64m")?.size,
            Some(64 << 20)
        );
        assert_eq!(
            Mount::parse("type=tmpfs,target=/t,size=1.5GiB")?.size,
            Some(3 << 29)
        );
        Ok(())
    }

    #[test]
    fn errors() {
        let err = |s: &str| Mount::parse(s).err().unwrap_or_default();
        assert_eq!(err("type=nfs,target=/x"), "unsupported mount type \"nfs\"");
        assert_eq!(
            err("type=bind,target=/x,color=red"),
            "unexpected key 'color' in 'color=red'"
        );
        assert_eq!(
            err("type=bind,target=/x,required"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            err("type=bind,target=/x,size=1m"),
            "unexpected key 'size' for mount type 'bind'"
        );
        assert_eq!(
            err("type=bind,target=/x,mode=0644"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            err("type=bind,target=/x,sharing=shared"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            err("type=cache,target=/x,sharing=nope"),
            "unsupported sharing value \"nope\""
        );
        assert_eq!(
            err("type=cache,target=/x,uid=me"),
            "invalid value for uid: me"
        );
        assert_eq!(err("type=cache"), "cache mount requires a target");
        assert_eq!(
            err("type=secret,from=x,id=a"),
            "secret mount should not have a from"
        );
        assert_eq!(
            err("type=bind,target=/x,ro=maybe"),
            "invalid value for ro: maybe"
        );
        assert_eq!(
            err("type=bind,tar\"get=/x"),
            "bare \" in non-quoted field in \"type=bind,tar\\\"get=/x\""
        );
    }

    #[test]
    fn expands_values() -> Result<(), String> {
        let m = Mount::parse_with("type=cache,target=$DIR,id=c", &|v: &str| {
            Ok(v.replace("$DIR", "/cache"))
        })?;
        assert_eq!(m.target.as_deref(), Some("/cache"));
        Ok(())
    }
}
