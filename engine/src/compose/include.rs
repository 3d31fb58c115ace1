//! `include`: other compose projects pulled into this one. Each is loaded on
//! its own (its files merged, its `extends` and own `include`s resolved),
//! with its own project directory for relative paths and its own `.env`
//! (or `env_file`), which the including project's variables override. Its
//! services, networks, volumes, secrets and configs are then added; a name
//! already defined differently is an error.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_yaml::{Mapping, Value};

use super::error::{index, ComposeError, Result};
use super::load::{Layer, Loader, Origins};
use super::{dotenv, merge, paths, yaml};

pub(crate) fn apply(
    loader: &mut Loader,
    doc: &mut Mapping,
    layer: usize,
    origins: &mut Origins,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let Some(Value::Sequence(entries)) = doc.remove("include") else {
        return Ok(());
    };
    let including = stack.last().map(|p| loader.display(p)).unwrap_or_default();
    for (i, entry) in entries.iter().enumerate() {
        let at = index("include", i);
        let files: Vec<PathBuf> = entry
            .get("path")
            .and_then(Value::as_sequence)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let Some(first) = files.first() else {
            continue;
        };
        for f in &files {
            if !f.is_file() {
                return Err(ComposeError::field(
                    &including,
                    &at,
                    format!("{}: no such file", loader.display(f)),
                ));
            }
            if stack.contains(f) {
                return Err(ComposeError::field(
                    &including,
                    &at,
                    format!(
                        "include cycle: {} is already being loaded",
                        loader.display(f)
                    ),
                ));
            }
        }
        let dir = match entry.get("project_directory").and_then(Value::as_str) {
            Some(d) => PathBuf::from(d),
            None => first.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let env_files: Vec<PathBuf> = match entry.get("env_file").and_then(Value::as_sequence) {
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(PathBuf::from)
                .collect(),
            None => {
                let dotenv = dir.join(".env");
                if dotenv.is_file() {
                    vec![dotenv]
                } else {
                    Vec::new()
                }
            }
        };
        let env = sub_environment(loader, layer, &env_files)?;
        loader.layers.push(Layer {
            dir: paths::clean(&dir),
            env: Rc::new(env),
        });
        let sub_layer = loader.layers.len() - 1;
        let mut sub = Mapping::new();
        let mut sub_origins = Origins::new();
        for f in &files {
            let d = loader.main_document(sub_layer, f, &dir)?;
            sub_origins.record(&d, &loader.display(f), sub_layer);
            merge::documents(&mut sub, d);
        }
        stack.extend(files.iter().cloned());
        apply(loader, &mut sub, sub_layer, &mut sub_origins, stack)?;
        stack.truncate(stack.len() - files.len());
        let mut sub_value = Value::Mapping(sub);
        yaml::strip_merge_tags(&mut sub_value);
        add(doc, sub_value, &including, &at, origins, sub_origins)?;
    }
    Ok(())
}

/// The included project's variables: its env files (read with the
/// including project's variables), the including project's over them.
fn sub_environment(
    loader: &mut Loader,
    layer: usize,
    env_files: &[PathBuf],
) -> Result<std::collections::BTreeMap<String, String>> {
    let parent = loader
        .layers
        .get(layer)
        .map(|l| l.env.clone())
        .unwrap_or_default();
    let mut env = std::collections::BTreeMap::new();
    for file in env_files {
        let display = loader.display(file);
        let text = std::fs::read_to_string(file)
            .map_err(|e| ComposeError::file(&display, format!("cannot read env file: {e}")))?;
        let so_far = env.clone();
        let lookup = |k: &str| parent.get(k).or_else(|| so_far.get(k)).cloned();
        let mut warnings = Vec::new();
        let vars = dotenv::parse(&text, &lookup, &mut warnings)
            .map_err(|m| ComposeError::file(&display, m))?;
        for w in warnings {
            loader.warn(format!("{display}: {w}"));
        }
        env.extend(vars);
    }
    env.extend(parent.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

/// Adds an included project's definitions; the same name defined
/// differently on both sides is a conflict.
fn add(
    doc: &mut Mapping,
    sub: Value,
    including: &str,
    at: &str,
    origins: &mut Origins,
    sub_origins: Origins,
) -> Result<()> {
    let Value::Mapping(sub) = sub else {
        return Ok(());
    };
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        let Some(Value::Mapping(defs)) = sub.get(section) else {
            continue;
        };
        let target = doc
            .entry(Value::String(section.to_owned()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if target.is_null() {
            *target = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(target) = target else {
            continue;
        };
        for (k, v) in defs {
            let key = yaml::key_string(k).unwrap_or_default();
            match target.get(k) {
                Some(existing) if existing != v => {
                    let from = sub_origins
                        .get(section, &key)
                        .map(|(f, _)| f.clone())
                        .unwrap_or_default();
                    return Err(ComposeError::field(
                        including,
                        at,
                        format!("{section}.{key} from {from} conflicts with the definition already in the project"),
                    ));
                }
                Some(_) => {}
                None => {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
    }
    for (k, v) in sub_origins.of {
        origins.of.entry(k).or_insert(v);
    }
    Ok(())
}
