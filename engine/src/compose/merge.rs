//! Merging compose files (`-f a.yaml -f b.yaml`) and `extends`, by the
//! specification's rules, on canonical (normalised) documents:
//!
//! - mappings merge key by key, the later file winning;
//! - scalars are replaced;
//! - `command`, `entrypoint` and `healthcheck.test` are replaced whole;
//! - `ports` (by host IP, target, published port and protocol), `volumes`
//!   (by target), `secrets` and `configs` (by target) and `env_file` (by
//!   path) are merged by key: a later entry replaces the earlier one in place;
//! - `expose`, `dns`, `dns_search`, `tmpfs`, `cap_add`, `cap_drop`,
//!   `security_opt`, `profiles`, `extra_hosts`, `build.cache_from`,
//!   `build.tags` are appended without duplicates; other lists are appended;
//! - `logging` merges only when both name the same driver (or one none);
//! - a `null` network entry does not erase the earlier entry's settings;
//! - `!reset` removes the earlier value, `!override` replaces it whole.

use serde_yaml::{Mapping, Value};

use super::yaml::{merge_tag, scalar_string, strip_merge_tags, OVERRIDE, RESET};

/// Merges a whole file over the files before it.
pub(crate) fn documents(base: &mut Mapping, over: Mapping) {
    settle_tags(base);
    for (key, value) in over {
        let name = key.as_str().unwrap_or_default().to_owned();
        if tag_applied(base, &key, &value) {
            continue;
        }
        match (name.as_str(), base.get_mut(&key)) {
            ("services", Some(Value::Mapping(services))) => {
                if let Value::Mapping(over_services) = value {
                    for (svc_name, svc) in over_services {
                        if tag_applied(services, &svc_name, &svc) {
                            continue;
                        }
                        match (services.get_mut(&svc_name), svc) {
                            (Some(Value::Mapping(b)), Value::Mapping(o)) => service(b, o),
                            (_, svc) => {
                                services.insert(svc_name, svc);
                            }
                        }
                    }
                }
            }
            ("networks" | "volumes" | "secrets" | "configs", Some(Value::Mapping(defs))) => {
                if let Value::Mapping(over_defs) = value {
                    for (def_name, def) in over_defs {
                        if tag_applied(defs, &def_name, &def) {
                            continue;
                        }
                        match defs.get_mut(&def_name) {
                            Some(existing) => generic(existing, def),
                            None => {
                                defs.insert(def_name, def);
                            }
                        }
                    }
                }
            }
            ("include", Some(Value::Sequence(list))) => {
                if let Value::Sequence(more) = value {
                    list.extend(more);
                }
            }
            _ => {
                base.insert(key, value);
            }
        }
    }
}

/// The side merged into has nothing under it: its own `!reset` values go,
/// `!override` values stay as they are.
fn settle_tags(base: &mut Mapping) {
    let mut v = Value::Mapping(std::mem::take(base));
    strip_merge_tags(&mut v);
    if let Value::Mapping(m) = v {
        *base = m;
    }
}

/// Handles `!reset` (remove) and `!override` (replace) for one entry; true
/// when the entry is done.
fn tag_applied(base: &mut Mapping, key: &Value, value: &Value) -> bool {
    match (merge_tag(value), value) {
        (Some(RESET), _) => {
            base.remove(key);
            true
        }
        (Some(OVERRIDE), Value::Tagged(t)) => {
            base.insert(key.clone(), t.value.clone());
            true
        }
        _ => false,
    }
}

/// Merges one service definition over another (files, or `extends`, where
/// the extending service is `over`).
pub(crate) fn service(base: &mut Mapping, over: Mapping) {
    settle_tags(base);
    for (key, value) in over {
        if tag_applied(base, &key, &value) {
            continue;
        }
        let name = key.as_str().unwrap_or_default().to_owned();
        let Some(existing) = base.get_mut(&key) else {
            base.insert(key, value);
            continue;
        };
        match name.as_str() {
            "command" | "entrypoint" => *existing = value,
            "ports" => unique(existing, value, port_key),
            "volumes" => unique(existing, value, |v| field_text(v, "target")),
            "secrets" => unique(existing, value, |v| mount_key(v, "/run/secrets/")),
            "configs" => unique(existing, value, |v| mount_key(v, "/")),
            "env_file" => unique(existing, value, |v| field_text(v, "path")),
            "expose" | "dns" | "dns_search" | "tmpfs" | "cap_add" | "cap_drop" | "security_opt"
            | "profiles" | "extra_hosts" => unique(existing, value, text_key),
            "healthcheck" => nested(existing, value, |k| (k == "test").then_some(Rule::Replace)),
            "build" => nested(existing, value, |k| match k {
                "cache_from" | "tags" => Some(Rule::UniqueText),
                "secrets" => Some(Rule::UniqueSource),
                _ => None,
            }),
            "logging" => logging(existing, value),
            "networks" => networks(existing, value),
            _ => generic(existing, value),
        }
    }
}

enum Rule {
    Replace,
    UniqueText,
    UniqueSource,
}

/// A mapping merged key by key, with a rule for some of its keys.
fn nested(base: &mut Value, over: Value, rule: impl Fn(&str) -> Option<Rule>) {
    let (Value::Mapping(b), Value::Mapping(o)) = (&mut *base, &over) else {
        *base = over;
        return;
    };
    for (key, value) in o.clone() {
        if tag_applied(b, &key, &value) {
            continue;
        }
        let name = key.as_str().unwrap_or_default();
        let Some(existing) = b.get_mut(&key) else {
            b.insert(key, value);
            continue;
        };
        match rule(name) {
            Some(Rule::Replace) => *existing = value,
            Some(Rule::UniqueText) => unique(existing, value, text_key),
            Some(Rule::UniqueSource) => unique(existing, value, |v| field_text(v, "source")),
            None => generic(existing, value),
        }
    }
}

/// The specification's default: mappings merge, lists append, scalars are replaced.
pub(crate) fn generic(base: &mut Value, over: Value) {
    match (&mut *base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (key, value) in o {
                if tag_applied(b, &key, &value) {
                    continue;
                }
                match b.get_mut(&key) {
                    Some(existing) => generic(existing, value),
                    None => {
                        b.insert(key, value);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) => b.extend(o),
        (_, Value::Tagged(t)) if t.tag == OVERRIDE => *base = t.value,
        (_, other) => *base = other,
    }
}

/// Lists whose entries are identified by a key: a later entry with the same
/// key replaces the earlier one where it stands, others are appended.
fn unique(base: &mut Value, over: Value, key: impl Fn(&Value) -> String) {
    let (Value::Sequence(b), Value::Sequence(o)) = (&mut *base, &over) else {
        *base = over;
        return;
    };
    for item in o {
        let k = key(item);
        match b.iter_mut().find(|e| key(e) == k) {
            Some(existing) => *existing = item.clone(),
            None => b.push(item.clone()),
        }
    }
}

fn logging(base: &mut Value, over: Value) {
    let driver = |v: &Value| v.get("driver").and_then(scalar_string);
    match (driver(base), driver(&over)) {
        (Some(a), Some(b)) if a != b => *base = over,
        _ => generic(base, over),
    }
}

/// A service's networks: `net: null` in a later file keeps the earlier
/// aliases and addresses.
fn networks(base: &mut Value, over: Value) {
    let (Value::Mapping(b), Value::Mapping(o)) = (&mut *base, &over) else {
        *base = over;
        return;
    };
    for (key, value) in o.clone() {
        if tag_applied(b, &key, &value) {
            continue;
        }
        match b.get_mut(&key) {
            Some(_) if value.is_null() => {}
            Some(existing) if existing.is_null() => *existing = value,
            Some(existing) => generic(existing, value),
            None => {
                b.insert(key, value);
            }
        }
    }
}

fn text_key(v: &Value) -> String {
    scalar_string(v).unwrap_or_else(|| format!("{v:?}"))
}

fn field_text(v: &Value, field: &str) -> String {
    v.get(field).and_then(scalar_string).unwrap_or_default()
}

fn port_key(v: &Value) -> String {
    ["host_ip", "target", "published", "protocol"]
        .iter()
        .map(|f| field_text(v, f))
        .collect::<Vec<_>>()
        .join("|")
}

/// Secrets and configs are the same mount when their targets are; the
/// target defaults to the source under `dir`.
fn mount_key(v: &Value, dir: &str) -> String {
    match v.get("target").and_then(scalar_string) {
        Some(t) if t.starts_with('/') => t,
        Some(t) => format!("{dir}{t}"),
        None => format!("{dir}{}", field_text(v, "source")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Mapping {
        serde_yaml::from_str(text).expect("yaml")
    }

    fn merged(a: &str, b: &str) -> Value {
        let mut base = doc(a);
        documents(&mut base, doc(b));
        super::super::yaml::strip_merge_tags(&mut Value::Mapping(base.clone()));
        Value::Mapping(base)
    }

    #[test]
    fn scalars_mappings_and_lists() {
        let m = merged(
            "services:\n  web:\n    image: a\n    environment: {A: '1', B: '2'}\n    command: [x, y]\n    cap_add: [NET_ADMIN]\n    labels: {l: '1'}\n",
            "services:\n  web:\n    image: b\n    environment: {B: '3', C: '4'}\n    command: [z]\n    cap_add: [NET_ADMIN, SYS_TIME]\n  db:\n    image: pg\n",
        );
        let web = &m["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(
            web["environment"],
            serde_yaml::from_str::<Value>("{A: '1', B: '3', C: '4'}").expect("y")
        );
        assert_eq!(
            web["command"],
            serde_yaml::from_str::<Value>("[z]").expect("y")
        );
        assert_eq!(
            web["cap_add"],
            serde_yaml::from_str::<Value>("[NET_ADMIN, SYS_TIME]").expect("y")
        );
        assert_eq!(web["labels"]["l"], "1");
        assert_eq!(m["services"]["db"]["image"], "pg");
    }

    #[test]
    fn ports_and_volumes_by_key() {
        let m = merged(
            "services:\n  web:\n    ports: [{target: 80, published: '8080', protocol: tcp, mode: ingress}, {target: 443, protocol: tcp, mode: ingress}]\n    volumes: [{type: volume, source: a, target: /data}, {type: bind, source: /x, target: /x}]\n",
            "services:\n  web:\n    ports: [{target: 80, published: '8080', protocol: tcp, mode: host}, {target: 80, published: '9090', protocol: tcp, mode: ingress}]\n    volumes: [{type: volume, source: b, target: /data, read_only: true}]\n",
        );
        let ports = m["services"]["web"]["ports"].as_sequence().expect("seq");
        assert_eq!(ports.len(), 3);
        assert_eq!(ports[0]["mode"], "host");
        assert_eq!(ports[2]["published"], "9090");
        let vols = m["services"]["web"]["volumes"].as_sequence().expect("seq");
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0]["source"], "b");
        assert_eq!(vols[0]["read_only"], true);
    }

    #[test]
    fn reset_and_override() {
        let mut base = doc("services:\n  web:\n    image: a\n    ports: [{target: 80}]\n    environment: {A: '1', B: '2'}\n");
        let over: Mapping = serde_yaml::from_str(
            "services:\n  web:\n    ports: !reset []\n    environment:\n      A: !reset null\n",
        )
        .expect("y");
        documents(&mut base, over);
        let mut v = Value::Mapping(base);
        super::super::yaml::strip_merge_tags(&mut v);
        assert!(v["services"]["web"].get("ports").is_none());
        assert!(v["services"]["web"]["environment"].get("A").is_none());
        assert_eq!(v["services"]["web"]["environment"]["B"], "2");

        let mut base = doc("services:\n  web:\n    ports: [{target: 80}]\n");
        let over: Mapping =
            serde_yaml::from_str("services:\n  web:\n    ports: !override [{target: 443}]\n")
                .expect("y");
        documents(&mut base, over);
        let ports = base["services"]["web"]["ports"].as_sequence().expect("seq");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["target"], 443);
    }

    #[test]
    fn tags_of_the_first_file_settle() {
        let mut base =
            doc("services:\n  web:\n    ports: !override [{target: 80}]\n    dns: !reset [x]\n");
        documents(
            &mut base,
            doc("services:\n  web:\n    ports: [{target: 443}]\n    dns: [y]\n"),
        );
        let web = &base["services"]["web"];
        assert_eq!(web["ports"].as_sequence().map(Vec::len), Some(2));
        assert_eq!(web["dns"], serde_yaml::from_str::<Value>("[y]").expect("y"));
    }

    #[test]
    fn secrets_logging_networks() {
        let m = merged(
            "services:\n  web:\n    secrets: [{source: a}, {source: b, target: /etc/b}]\n    logging: {driver: json-file, options: {max-size: 1m}}\n    networks: {front: {aliases: [w]}}\n    healthcheck: {test: [CMD, a], interval: 1s}\n",
            "services:\n  web:\n    secrets: [{source: a, mode: 0o400}, {source: c, target: /etc/b}]\n    logging: {options: {max-file: '3'}}\n    networks: {front: null, back: null}\n    healthcheck: {test: [CMD, b]}\n",
        );
        let web = &m["services"]["web"];
        let secrets = web["secrets"].as_sequence().expect("seq");
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[0]["mode"], 256);
        assert_eq!(secrets[1]["source"], "c");
        assert_eq!(web["logging"]["options"]["max-size"], "1m");
        assert_eq!(web["logging"]["options"]["max-file"], "3");
        assert_eq!(web["networks"]["front"]["aliases"][0], "w");
        assert!(web["networks"]["back"].is_null());
        assert_eq!(web["healthcheck"]["test"][1], "b");
        assert_eq!(web["healthcheck"]["interval"], "1s");
    }
}
