//! `compose config`: the resolved project as YAML, like `docker compose
//! config` prints it (`name`, then `services`, `networks`, `volumes`,
//! `secrets`, `configs`, everything in long syntax with absolute paths).
//! Literal `$` are written `$$`, so that loading the output again gives the
//! same model.

use serde::Serialize;
use serde_yaml::{Mapping, Value};

use super::model::{Project, Service};

pub(crate) fn to_yaml(project: &Project) -> String {
    let mut top = Mapping::new();
    top.insert("name".into(), project.name.clone().into());
    let mut services = Mapping::new();
    for s in &project.services {
        services.insert(s.name.clone().into(), service_value(s));
    }
    top.insert("services".into(), Value::Mapping(services));
    section(&mut top, "networks", &project.networks);
    section(&mut top, "volumes", &project.volumes);
    section(&mut top, "secrets", &project.secrets);
    section(&mut top, "configs", &project.configs);
    let mut value = Value::Mapping(top);
    escape_dollars(&mut value);
    serde_yaml::to_string(&value).unwrap_or_default()
}

fn service_value(s: &Service) -> Value {
    let mut v = to_value(s);
    // A network joined without settings is written `name: null`, as compose does.
    if let Some(Value::Mapping(nets)) = v.get_mut("networks") {
        for net in nets.values_mut() {
            if net.as_mapping().is_some_and(Mapping::is_empty) {
                *net = Value::Null;
            }
        }
    }
    v
}

fn section<T: Serialize>(
    top: &mut Mapping,
    name: &str,
    defs: &std::collections::BTreeMap<String, T>,
) {
    if defs.is_empty() {
        return;
    }
    let mut m = Mapping::new();
    for (k, d) in defs {
        m.insert(k.clone().into(), to_value(d));
    }
    top.insert(name.into(), Value::Mapping(m));
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_yaml::to_value(v).unwrap_or(Value::Null)
}

fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Mapping(m) => m.values_mut().for_each(escape_dollars),
        Value::Sequence(s) => s.iter_mut().for_each(escape_dollars),
        _ => {}
    }
}
