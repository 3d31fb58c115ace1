//! `extends`: a service starts from another service's definition, in the
//! same file or another one, and merges its own fields over it (merge.rs's
//! rules). The other file is read on its own, with its relative paths
//! against its own directory; chains are followed and cycles are an error.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::{join, ComposeError, Result};
use super::load::Loader;
use super::merge;

impl Loader {
    /// The service `name` of `path` (read in `layer` with paths against
    /// `base`), with its `extends` chain merged in.
    pub(crate) fn resolve_service(
        &mut self,
        layer: usize,
        path: &Path,
        base: &Path,
        name: &str,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<Mapping> {
        let key = (
            (layer, path.to_path_buf(), base.to_path_buf()),
            name.to_owned(),
        );
        if let Some(done) = self.resolved.get(&key) {
            return Ok(done.clone());
        }
        let display = self.display(path);
        let at = join(&join("services", name), "extends");
        let doc = self.raw(layer, path, base)?;
        let mut svc = match doc.get("services").and_then(|s| s.get(name)) {
            Some(Value::Mapping(m)) => m.clone(),
            _ => {
                return Err(ComposeError::field(
                    &display,
                    &join("services", name),
                    "not a service definition",
                ))
            }
        };
        let Some(ext) = svc.remove("extends") else {
            self.resolved.insert(key, svc.clone());
            return Ok(svc);
        };
        let target = ext
            .get("service")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (target_path, target_base) = match ext.get("file").and_then(Value::as_str) {
            Some(file) => {
                let file = PathBuf::from(file);
                if !file.is_file() {
                    return Err(ComposeError::field(
                        &display,
                        &join(&at, "file"),
                        format!("{}: no such file", self.display(&file)),
                    ));
                }
                // The extended file's relative paths are its own.
                let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
                (file, dir)
            }
            None => (path.to_path_buf(), base.to_path_buf()),
        };
        let here = (path.to_path_buf(), name.to_owned());
        if stack.contains(&here) {
            let mut chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).collect();
            chain.push(name.to_owned());
            return Err(ComposeError::field(
                &display,
                &at,
                format!("extends cycle: {}", chain.join(" -> ")),
            ));
        }
        let target_doc = self.raw(layer, &target_path, &target_base)?;
        let exists = target_doc
            .get("services")
            .and_then(|s| s.get(target.as_str()))
            .is_some_and(Value::is_mapping);
        if !exists {
            let where_ = if target_path == path {
                String::new()
            } else {
                format!(" in {}", self.display(&target_path))
            };
            return Err(ComposeError::field(
                &display,
                &at,
                format!("service {target:?} not found{where_}"),
            ));
        }
        stack.push(here);
        let mut merged = self.resolve_service(layer, &target_path, &target_base, &target, stack)?;
        stack.pop();
        merge::service(&mut merged, svc);
        self.resolved.insert(key, merged.clone());
        Ok(merged)
    }
}
