//! Brings one file's union-typed fields into a single canonical shape before
//! files are merged or extended, so that merging can go by key: lists of
//! `KEY=VALUE` become mappings, short port/volume syntaxes become long ones,
//! single strings become lists, and host paths (build contexts, bind sources,
//! env_file, secret and config files, include paths) become absolute against
//! the file's base directory. Syntax errors are found here, naming the file
//! they are in.

use std::path::Path;

use serde::Serialize;
use serde_yaml::{Mapping, Value};

use super::error::{index, join, Result};
use super::paths;
use super::reader::Reader;
use super::yaml::{key_string, kind, merge_tag, tagged, OVERRIDE, RESET};

/// Where a file's relative paths point.
pub(crate) struct Base<'a> {
    /// Relative host paths resolve against this (the project directory).
    pub(crate) dir: &'a Path,
    /// The directory of the file itself (for `extends.file`).
    pub(crate) file_dir: &'a Path,
    pub(crate) home: &'a Path,
}

const TOP_LEVEL: [&str; 8] = [
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include",
];

pub(crate) fn document(r: &mut Reader, doc: &mut Mapping, base: &Base) -> Result<()> {
    for key in doc.keys() {
        let k = key_string(key).unwrap_or_default();
        if k.starts_with("x-") || TOP_LEVEL.contains(&k.as_str()) {
            continue;
        }
        if k == "models" {
            return Err(r.err(&k, "\"models\" is not supported by skiffctl"));
        }
        return Err(r.err(&k, format!("unknown top-level field {k:?}")));
    }
    if let Some(services) = doc.get_mut("services") {
        if services.is_null() {
            *services = Value::Mapping(Mapping::new());
        }
        let map = match services {
            Value::Mapping(m) => m,
            other => {
                return Err(r.err(
                    "services",
                    format!("must be a mapping of services, not {}", kind(other)),
                ))
            }
        };
        for (name, svc) in map.iter_mut() {
            let name = key_string(name)
                .ok_or_else(|| r.err("services", "service names must be strings"))?;
            let path = join("services", &name);
            check_service_name(&name).map_err(|m| r.err(&path, m))?;
            let svc = match svc {
                Value::Mapping(m) => m,
                other => {
                    return Err(r.err(
                        &path,
                        format!("a service must be a mapping, not {}", kind(other)),
                    ))
                }
            };
            service(r, svc, &path, base)?;
        }
    }
    for section in ["networks", "volumes", "secrets", "configs"] {
        let Some(defs) = doc.get_mut(section) else {
            continue;
        };
        if defs.is_null() {
            *defs = Value::Mapping(Mapping::new());
        }
        let map = match defs {
            Value::Mapping(m) => m,
            other => return Err(r.err(section, format!("must be a mapping, not {}", kind(other)))),
        };
        for (name, def) in map.iter_mut() {
            let name = key_string(name).ok_or_else(|| r.err(section, "names must be strings"))?;
            let path = join(section, &name);
            if def.is_null() {
                *def = Value::Mapping(Mapping::new());
            }
            let def = match def {
                Value::Mapping(m) => m,
                other => {
                    return Err(r.err(&path, format!("must be a mapping, not {}", kind(other))))
                }
            };
            resource(r, section, def, &path, base)?;
        }
    }
    if let Some(include) = doc.get_mut("include") {
        includes(r, include, base)?;
    }
    Ok(())
}

/// Service names as compose allows them.
fn check_service_name(name: &str) -> std::result::Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid service name {name:?}: use letters, digits, '_', '.' and '-'"
        ))
    }
}

/// Applies `f` to a field's value, looking through `!override` and leaving
/// `!reset` values alone (they only remove).
fn field(map: &mut Mapping, name: &str, f: impl FnOnce(&Value) -> Result<Value>) -> Result<()> {
    let Some(value) = map.get_mut(name) else {
        return Ok(());
    };
    match merge_tag(value) {
        Some(RESET) => Ok(()),
        Some(_) => {
            if let Value::Tagged(t) = value {
                let inner = f(&t.value)?;
                *value = tagged(OVERRIDE, inner);
            }
            Ok(())
        }
        None => {
            if !value.is_null() {
                *value = f(value)?;
            }
            Ok(())
        }
    }
}

fn to_value(r: &Reader, path: &str, v: impl Serialize) -> Result<Value> {
    serde_yaml::to_value(v).map_err(|e| r.err(path, format!("internal error: {e}")))
}

fn service(r: &mut Reader, svc: &mut Mapping, path: &str, base: &Base) -> Result<()> {
    let p = |name: &str| join(path, name);
    field(svc, "build", |v| build(r, v, &p("build"), base))?;
    field(svc, "environment", |v| {
        key_values(r, v, &p("environment"), true)
    })?;
    field(svc, "labels", |v| key_values(r, v, &p("labels"), false))?;
    field(svc, "sysctls", |v| key_values(r, v, &p("sysctls"), false))?;
    field(svc, "env_file", |v| env_files(r, v, &p("env_file"), base))?;
    let ports_path = p("ports");
    field(svc, "ports", |v| {
        let mut out = Vec::new();
        for (i, entry) in r.seq(v, &ports_path)?.iter().enumerate() {
            let item = index(&ports_path, i);
            for port in super::ports::parse_entry(r, entry, &item)? {
                out.push(to_value(r, &item, port)?);
            }
        }
        Ok(Value::Sequence(out))
    })?;
    let volumes_path = p("volumes");
    field(svc, "volumes", |v| {
        let mut out = Vec::new();
        for (i, entry) in r.seq(v, &volumes_path)?.iter().enumerate() {
            let item = index(&volumes_path, i);
            let vol = super::volumes::parse_entry(r, entry, &item, base.dir, base.home)?;
            out.push(to_value(r, &item, vol)?);
        }
        Ok(Value::Sequence(out))
    })?;
    field(svc, "networks", |v| {
        names_to_map(r, v, &p("networks"), |_| Value::Null)
    })?;
    field(svc, "depends_on", |v| {
        names_to_map(r, v, &p("depends_on"), |_| {
            let mut m = Mapping::new();
            m.insert("condition".into(), "service_started".into());
            m.insert("required".into(), true.into());
            Value::Mapping(m)
        })
    })?;
    field(svc, "secrets", |v| file_refs(r, v, &p("secrets")))?;
    field(svc, "configs", |v| file_refs(r, v, &p("configs")))?;
    field(svc, "extends", |v| extends(r, v, &p("extends"), base))?;
    for name in ["dns", "dns_search", "tmpfs"] {
        field(svc, name, |v| {
            Ok(Value::Sequence(
                r.string_or_list(v, &p(name))?
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ))
        })?;
    }
    field(svc, "extra_hosts", |v| extra_hosts(r, v, &p("extra_hosts")))?;
    field(svc, "ulimits", |v| ulimits(r, v, &p("ulimits")))?;
    if let Some(Value::Mapping(hc)) = svc.get_mut("healthcheck") {
        field(hc, "test", |v| match v {
            Value::String(s) => Ok(Value::Sequence(vec![
                "CMD-SHELL".into(),
                Value::String(s.clone()),
            ])),
            other => Ok(other.clone()),
        })?;
    }
    Ok(())
}

fn build(r: &mut Reader, v: &Value, path: &str, base: &Base) -> Result<Value> {
    let mut m = match v {
        Value::String(context) => {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(context.clone()));
            m
        }
        Value::Mapping(m) => m.clone(),
        other => {
            return Err(r.err(
                path,
                format!(
                    "must be a string (the context) or a mapping, not {}",
                    kind(other)
                ),
            ))
        }
    };
    // A missing context stays missing, so that merging does not replace the
    // earlier file's (or extended service's) context with a default.
    if let Some(c) = m.get("context").filter(|c| !c.is_null()) {
        let context = r.string(c, &join(path, "context"))?;
        let context = if paths::is_remote_context(&context) {
            context
        } else {
            paths::resolve(&context, base.dir, base.home)
        };
        m.insert("context".into(), Value::String(context));
    }
    field(&mut m, "args", |a| {
        key_values(r, a, &join(path, "args"), true)
    })?;
    field(&mut m, "labels", |a| {
        key_values(r, a, &join(path, "labels"), false)
    })?;
    field(&mut m, "secrets", |s| {
        file_refs(r, s, &join(path, "secrets"))
    })?;
    Ok(Value::Mapping(m))
}

/// `[K=V, K]` or `{K: V}` → `{K: V}`. With `nullable`, a bare `K` (or a null
/// value) stays null, to be looked up in the environment later; otherwise
/// it is the empty string.
fn key_values(r: &Reader, v: &Value, path: &str, nullable: bool) -> Result<Value> {
    let mut out = Mapping::new();
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let text = r.string(item, &index(path, i))?;
                let (k, value) = match text.split_once('=') {
                    Some((k, val)) => (k.to_owned(), Value::String(val.to_owned())),
                    None if nullable => (text.clone(), Value::Null),
                    None => (text.clone(), Value::String(String::new())),
                };
                if k.is_empty() {
                    return Err(r.err(&index(path, i), format!("missing name in {text:?}")));
                }
                out.insert(Value::String(k), value);
            }
        }
        Value::Mapping(m) => {
            for (k, val) in m {
                let key = key_string(k)
                    .ok_or_else(|| r.err(path, format!("keys must be strings, not {}", kind(k))))?;
                let item = join(path, &key);
                let value = match val {
                    Value::Null if nullable => Value::Null,
                    Value::Null => Value::String(String::new()),
                    Value::Tagged(_) if merge_tag(val).is_some() => val.clone(),
                    other => Value::String(r.string(other, &item)?),
                };
                out.insert(Value::String(key), value);
            }
        }
        other => {
            return Err(r.err(
                path,
                format!(
                    "must be a list of KEY=VALUE or a mapping, not {}",
                    kind(other)
                ),
            ))
        }
    }
    Ok(Value::Mapping(out))
}

/// `env_file`: a path, or a list of paths and `{path, required, format}`;
/// always a list of mappings with an absolute path.
fn env_files(r: &mut Reader, v: &Value, path: &str, base: &Base) -> Result<Value> {
    let entries = match v {
        Value::Sequence(s) => s.clone(),
        other => vec![other.clone()],
    };
    let spec = super::reader::Spec {
        known: &["path", "required", "format"],
        unsupported: &[],
        ignored: &[],
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let item = index(path, i);
        let mut m = Mapping::new();
        let (file, required, format) = match entry {
            Value::Mapping(_) => {
                let f = r.fields(entry, &item, &spec)?;
                let file = r
                    .opt_string(&f, "path")?
                    .ok_or_else(|| r.err(&item, "an env_file entry needs a path"))?;
                let format = r.opt_string(&f, "format")?;
                if let Some(fmt) = &format {
                    if fmt != "raw" {
                        return Err(r.err(
                            &f.path("format"),
                            format!("unknown env_file format {fmt:?}: only raw is known"),
                        ));
                    }
                }
                (file, r.opt_bool(&f, "required")?.unwrap_or(true), format)
            }
            other => (r.string(other, &item)?, true, None),
        };
        m.insert(
            "path".into(),
            paths::resolve(&file, base.dir, base.home).into(),
        );
        m.insert("required".into(), required.into());
        if let Some(fmt) = format {
            m.insert("format".into(), fmt.into());
        }
        out.push(Value::Mapping(m));
    }
    Ok(Value::Sequence(out))
}

/// `[a, b]` or `{a: ..., b: ...}` → a mapping by name; list items get `default`.
fn names_to_map(
    r: &Reader,
    v: &Value,
    path: &str,
    default: impl Fn(&str) -> Value,
) -> Result<Value> {
    match v {
        Value::Sequence(items) => {
            let mut out = Mapping::new();
            for (i, item) in items.iter().enumerate() {
                let name = r.string(item, &index(path, i))?;
                out.insert(Value::String(name.clone()), default(&name));
            }
            Ok(Value::Mapping(out))
        }
        Value::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, val) in m {
                let key = key_string(k)
                    .ok_or_else(|| r.err(path, format!("keys must be strings, not {}", kind(k))))?;
                out.insert(Value::String(key), val.clone());
            }
            Ok(Value::Mapping(out))
        }
        other => Err(r.err(
            path,
            format!("must be a list or a mapping, not {}", kind(other)),
        )),
    }
}

/// Service `secrets`/`configs`: names become `{source: name}`.
fn file_refs(r: &Reader, v: &Value, path: &str) -> Result<Value> {
    let mut out = Vec::new();
    for (i, item) in r.seq(v, path)?.iter().enumerate() {
        match item {
            Value::Mapping(_) => out.push(item.clone()),
            other => {
                let mut m = Mapping::new();
                m.insert("source".into(), r.string(other, &index(path, i))?.into());
                out.push(Value::Mapping(m));
            }
        }
    }
    Ok(Value::Sequence(out))
}

/// `extends: name` or `{service, file}`; the file becomes absolute against
/// the directory of the file that names it.
fn extends(r: &mut Reader, v: &Value, path: &str, base: &Base) -> Result<Value> {
    let spec = super::reader::Spec {
        known: &["service", "file"],
        unsupported: &[],
        ignored: &[],
    };
    let (service, file) = match v {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(_) => {
            let f = r.fields(v, path, &spec)?;
            let service = r
                .opt_string(&f, "service")?
                .ok_or_else(|| r.err(path, "extends needs a service"))?;
            (service, r.opt_string(&f, "file")?)
        }
        other => {
            return Err(r.err(
                path,
                format!("must be a service name or a mapping, not {}", kind(other)),
            ))
        }
    };
    let mut m = Mapping::new();
    m.insert("service".into(), service.into());
    if let Some(f) = file {
        m.insert(
            "file".into(),
            paths::resolve(&f, base.file_dir, base.home).into(),
        );
    }
    Ok(Value::Mapping(m))
}

/// `extra_hosts` as a list of `host:ip` (docker's `--add-host` form), from
/// `host=ip`/`host:ip` entries or a `{host: ip}` mapping (an IP list allowed).
fn extra_hosts(r: &Reader, v: &Value, path: &str) -> Result<Value> {
    let mut out = Vec::new();
    let mut add = |host: &str, ip: &str, at: &str| -> Result<()> {
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || ip.is_empty() {
            return Err(r.err(
                at,
                format!("invalid extra host {host:?}={ip:?}: use HOST=IP"),
            ));
        }
        if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(r.err(at, format!("invalid IP address {ip:?} for host {host:?}")));
        }
        out.push(Value::String(format!("{host}:{ip}")));
        Ok(())
    };
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let at = index(path, i);
                let text = r.string(item, &at)?;
                let (host, ip) = text
                    .split_once('=')
                    .or_else(|| text.split_once(':'))
                    .ok_or_else(|| {
                        r.err(&at, format!("invalid extra host {text:?}: use HOST=IP"))
                    })?;
                add(host, ip, &at)?;
            }
        }
        Value::Mapping(m) => {
            for (k, val) in m {
                let host = key_string(k).unwrap_or_default();
                let at = join(path, &host);
                for ip in r.string_or_list(val, &at)? {
                    add(&host, &ip, &at)?;
                }
            }
        }
        other => {
            return Err(r.err(
                path,
                format!("must be a list or a mapping, not {}", kind(other)),
            ))
        }
    }
    Ok(Value::Sequence(out))
}

/// `ulimits: {nofile: 1024}` → `{nofile: {soft: 1024, hard: 1024}}`.
fn ulimits(r: &Reader, v: &Value, path: &str) -> Result<Value> {
    let mut out = Mapping::new();
    for (k, val) in r.mapping(v, path)? {
        let name = key_string(k).unwrap_or_default();
        let at = join(path, &name);
        let limit = match val {
            Value::Mapping(_) => val.clone(),
            other => {
                let n = r.i64(other, &at)?;
                let mut m = Mapping::new();
                m.insert("soft".into(), n.into());
                m.insert("hard".into(), n.into());
                Value::Mapping(m)
            }
        };
        out.insert(Value::String(name), limit);
    }
    Ok(Value::Mapping(out))
}

/// Top-level networks/volumes/secrets/configs: labels as a mapping, files absolute.
fn resource(
    r: &mut Reader,
    section: &str,
    def: &mut Mapping,
    path: &str,
    base: &Base,
) -> Result<()> {
    field(def, "labels", |v| {
        key_values(r, v, &join(path, "labels"), false)
    })?;
    if section == "secrets" || section == "configs" {
        field(def, "file", |v| {
            let f = r.string(v, &join(path, "file"))?;
            Ok(paths::resolve(&f, base.dir, base.home).into())
        })?;
    }
    Ok(())
}

/// `include`: a list of paths or `{path, project_directory, env_file}`;
/// always mappings with absolute paths and lists.
fn includes(r: &mut Reader, v: &mut Value, base: &Base) -> Result<()> {
    let spec = super::reader::Spec {
        known: &["path", "project_directory", "env_file"],
        unsupported: &[],
        ignored: &[],
    };
    let items = r.seq(v, "include")?.clone();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = index("include", i);
        let (files, dir, env_files) = match item {
            Value::Mapping(_) => {
                let f = r.fields(item, &at, &spec)?;
                let files = match f.get("path") {
                    Some(p) => r.string_or_list(p, &f.path("path"))?,
                    None => return Err(r.err(&at, "an include needs a path")),
                };
                let dir = r.opt_string(&f, "project_directory")?;
                let envs = match f.get("env_file") {
                    Some(e) => r.string_or_list(e, &f.path("env_file"))?,
                    None => Vec::new(),
                };
                (files, dir, envs)
            }
            other => (vec![r.string(other, &at)?], None, Vec::new()),
        };
        if files.is_empty() {
            return Err(r.err(&at, "an include needs a path"));
        }
        let abs = |p: &String| Value::String(paths::resolve(p, base.file_dir, base.home));
        let mut m = Mapping::new();
        m.insert(
            "path".into(),
            Value::Sequence(files.iter().map(abs).collect()),
        );
        if let Some(d) = dir {
            m.insert("project_directory".into(), abs(&d));
        }
        if !env_files.is_empty() {
            m.insert(
                "env_file".into(),
                Value::Sequence(env_files.iter().map(abs).collect()),
            );
        }
        out.push(Value::Mapping(m));
    }
    *v = Value::Sequence(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> std::result::Result<Mapping, String> {
        let mut doc =
            super::super::yaml::parse_document(text, "compose.yaml").map_err(|e| e.to_string())?;
        let mut w = Vec::new();
        let mut r = Reader {
            file: "compose.yaml".to_owned(),
            warnings: &mut w,
        };
        let base = Base {
            dir: Path::new("/proj"),
            file_dir: Path::new("/proj"),
            home: Path::new("/home/me"),
        };
        document(&mut r, &mut doc, &base).map_err(|e| e.to_string())?;
        Ok(doc)
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn canonical_shapes() {
        let doc = norm(concat!(
            "services:\n  web:\n",
            "    build: ./app\n",
            "    environment: [A=1, B, C=x=y]\n",
            "    labels: [l1=a, l2]\n",
            "    env_file: .env.web\n",
            "    networks: [front]\n",
            "    depends_on: [db]\n",
            "    secrets: [s1]\n",
            "    dns: 8.8.8.8\n",
            "    extra_hosts: [\"h1=1.2.3.4\", \"h2:::1\"]\n",
            "    ulimits: {nofile: 1024}\n",
            "    healthcheck: {test: curl -f localhost}\n",
            "    extends: base\n",
        ))
        .expect("valid");
        let web = &doc["services"]["web"];
        assert_eq!(web["build"], yaml("{context: /proj/app}"));
        assert_eq!(web["environment"], yaml("{A: '1', B: null, C: x=y}"));
        assert_eq!(web["labels"], yaml("{l1: a, l2: ''}"));
        assert_eq!(
            web["env_file"],
            yaml("[{path: /proj/.env.web, required: true}]")
        );
        assert_eq!(web["networks"], yaml("{front: null}"));
        assert_eq!(
            web["depends_on"],
            yaml("{db: {condition: service_started, required: true}}")
        );
        assert_eq!(web["secrets"], yaml("[{source: s1}]"));
        assert_eq!(web["dns"], yaml("['8.8.8.8']"));
        assert_eq!(web["extra_hosts"], yaml("['h1:1.2.3.4', 'h2:::1']"));
        assert_eq!(web["ulimits"], yaml("{nofile: {soft: 1024, hard: 1024}}"));
        assert_eq!(
            web["healthcheck"]["test"],
            yaml("[CMD-SHELL, curl -f localhost]")
        );
        assert_eq!(web["extends"], yaml("{service: base}"));
    }

    #[test]
    fn errors_name_file_and_field() {
        assert_eq!(
            norm("services:\n  web:\n    image: x\n    ports: [\"80:80:80:80\"]\n")
                .expect_err("must fail"),
            "compose.yaml: services.web.ports[0]: invalid port \"80:80:80:80\""
        );
        assert_eq!(
            norm("services:\n  web:\n    ports: \"80\"\n").expect_err("must fail"),
            "compose.yaml: services.web.ports: must be a list, not a string"
        );
        assert_eq!(
            norm("servces: {}\n").expect_err("must fail"),
            "compose.yaml: servces: unknown top-level field \"servces\""
        );
        assert_eq!(
            norm("services:\n  \"bad name\": {}\n").expect_err("must fail"),
            "compose.yaml: services.bad name: invalid service name \"bad name\": use letters, digits, '_', '.' and '-'"
        );
        assert_eq!(
            norm("services:\n  web: 3\n").expect_err("must fail"),
            "compose.yaml: services.web: a service must be a mapping, not a number"
        );
    }

    #[test]
    fn override_tags_are_kept() {
        let doc =
            norm("services:\n  web:\n    ports: !override [\"80\"]\n    environment: !reset []\n")
                .expect("ok");
        assert_eq!(merge_tag(&doc["services"]["web"]["ports"]), Some(OVERRIDE));
        assert_eq!(
            merge_tag(&doc["services"]["web"]["environment"]),
            Some(RESET)
        );
    }
}
