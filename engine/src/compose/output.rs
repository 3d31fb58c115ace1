//! `compose config`: the resolved project as YAML, like `docker compose
//! config` prints it (`name`, then `services` in file order, `networks`,
//! `volumes`, `secrets`, `configs`, everything in long syntax with absolute
//! paths). Literal `$` are written `$$`, so that loading the output again
//! gives the same model.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_yaml::Value;

use super::model::{Project, Service};

pub(crate) fn to_yaml(project: &Project) -> String {
    let mut value = serde_yaml::to_value(project).unwrap_or(Value::Null);
    escape_dollars(&mut value);
    serde_yaml::to_string(&value).unwrap_or_default()
}

/// The project in compose's own shape (what `config` prints).
impl Serialize for Project {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("services", &Services(&self.services))?;
        entry(&mut m, "networks", &self.networks)?;
        entry(&mut m, "volumes", &self.volumes)?;
        entry(&mut m, "secrets", &self.secrets)?;
        entry(&mut m, "configs", &self.configs)?;
        m.end()
    }
}

fn entry<M: SerializeMap, T: Serialize>(
    m: &mut M,
    name: &str,
    defs: &BTreeMap<String, T>,
) -> Result<(), M::Error> {
    if defs.is_empty() {
        return Ok(());
    }
    m.serialize_entry(name, defs)
}

/// Services by name, in file order.
struct Services<'a>(&'a [Service]);

impl Serialize for Services<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|svc| (&svc.name, svc)))
    }
}

fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Mapping(m) => m.values_mut().for_each(escape_dollars),
        Value::Sequence(s) => s.iter_mut().for_each(escape_dollars),
        _ => {}
    }
}
