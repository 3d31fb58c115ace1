//! The merged document → the typed [`Project`], and what the engine asks of
//! a project: resource and container names, labels, image names and the
//! order to start services in. Names are docker compose's: volumes and
//! networks `PROJECT_KEY`, the network `PROJECT_default` for services that
//! declare none, containers `PROJECT-SERVICE-N`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::error::{ComposeError, Result};
use super::load::{Loader, Origins};
use super::model::{NetworkDef, Project, Service, ServiceNetwork};
use super::reader::Reader;
use super::validate::{self, Defined};
use super::{profiles, resources, service, yaml};

/// `My Project.v2` → `myprojectv2`: lowercase, only `a-z0-9_-`, not
/// starting with `_` or `-` (docker compose's rule for directory names).
pub fn normalize_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// Names given with `-p`, `COMPOSE_PROJECT_NAME` or `name:` must already be normal.
pub(crate) fn check_project_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first_ok
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid project name {name:?}: it must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit"
        ))
    }
}

/// Reads one file's services and resources on their own, so that a wrong
/// value is reported in the file that has it (the merged model is read again
/// in `build`, for what only the merge decides).
pub(crate) fn check_file(
    r: &mut Reader,
    doc: &Mapping,
    env: &BTreeMap<String, String>,
    home: &std::path::Path,
    dir: &std::path::Path,
) -> Result<()> {
    let mut doc = Value::Mapping(doc.clone());
    yaml::strip_merge_tags(&mut doc);
    let entries = |s: &str| -> Vec<(String, Value)> {
        match doc.get(s) {
            Some(Value::Mapping(m)) => m
                .iter()
                .map(|(k, v)| (yaml::key_string(k).unwrap_or_default(), v.clone()))
                .collect(),
            _ => Vec::new(),
        }
    };
    let ctx = service::Context {
        env,
        home,
        project_dir: dir,
        partial: true,
    };
    for (name, v) in entries("services") {
        service::parse(r, &name, &v, &ctx)?;
    }
    for (key, v) in entries("networks") {
        resources::network(r, &key, &v, "")?;
    }
    for (key, v) in entries("volumes") {
        resources::volume(r, &key, &v, "")?;
    }
    for (key, v) in entries("secrets") {
        resources::secret(r, &key, &v, "", env)?;
    }
    for (key, v) in entries("configs") {
        resources::config(r, &key, &v, "", env)?;
    }
    Ok(())
}

pub(crate) struct Input<'a> {
    pub(crate) loader: &'a mut Loader,
    pub(crate) doc: Mapping,
    pub(crate) name: String,
    pub(crate) origins: Origins,
    pub(crate) main_file: String,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) profiles: Vec<String>,
    pub(crate) named_services: &'a [String],
}

pub(crate) fn build(input: Input) -> Result<Project> {
    let Input {
        loader,
        doc,
        name,
        origins,
        main_file,
        files,
        profiles: active_profiles,
        named_services,
    } = input;
    let origin = |section: &str, key: &str| -> (String, usize) {
        origins
            .get(section, key)
            .cloned()
            .unwrap_or_else(|| (main_file.clone(), 0))
    };
    let mut warnings = std::mem::take(&mut loader.warnings);
    // Each file was read on its own before (check_file), with its warnings
    // naming the right file; reading the merged model again repeats them.
    let mut repeated = Vec::new();
    let section = |s: &str| -> Vec<(String, Value)> {
        match doc.get(s) {
            Some(Value::Mapping(m)) => m
                .iter()
                .map(|(k, v)| (yaml::key_string(k).unwrap_or_default(), v.clone()))
                .collect(),
            _ => Vec::new(),
        }
    };

    let mut networks = BTreeMap::new();
    for (key, v) in section("networks") {
        let mut r = Reader {
            file: origin("networks", &key).0,
            warnings: &mut repeated,
        };
        networks.insert(key.clone(), resources::network(&mut r, &key, &v, &name)?);
    }
    let mut volumes = BTreeMap::new();
    for (key, v) in section("volumes") {
        let mut r = Reader {
            file: origin("volumes", &key).0,
            warnings: &mut repeated,
        };
        volumes.insert(key.clone(), resources::volume(&mut r, &key, &v, &name)?);
    }
    let mut secrets = BTreeMap::new();
    for (key, v) in section("secrets") {
        let (file, layer) = origin("secrets", &key);
        let env = loader
            .layers
            .get(layer)
            .map(|l| l.env.clone())
            .unwrap_or_default();
        let mut r = Reader {
            file,
            warnings: &mut repeated,
        };
        secrets.insert(
            key.clone(),
            resources::secret(&mut r, &key, &v, &name, &env)?,
        );
    }
    let mut configs = BTreeMap::new();
    for (key, v) in section("configs") {
        let (file, layer) = origin("configs", &key);
        let env = loader
            .layers
            .get(layer)
            .map(|l| l.env.clone())
            .unwrap_or_default();
        let mut r = Reader {
            file,
            warnings: &mut repeated,
        };
        configs.insert(
            key.clone(),
            resources::config(&mut r, &key, &v, &name, &env)?,
        );
    }

    let mut services = Vec::new();
    for (svc_name, v) in section("services") {
        let (file, layer) = origin("services", &svc_name);
        let Some(l) = loader.layers.get(layer) else {
            return Err(ComposeError::Project(
                "internal error: unknown layer".into(),
            ));
        };
        let ctx = service::Context {
            env: &l.env,
            home: &loader.home,
            project_dir: &l.dir,
            partial: false,
        };
        let mut r = Reader {
            file,
            warnings: &mut repeated,
        };
        services.push(service::parse(&mut r, &svc_name, &v, &ctx)?);
    }

    let file_of = |svc: &str| origin("services", svc).0;
    let defined = Defined {
        networks: &networks,
        volumes: &volumes,
        secrets: &secrets,
        configs: &configs,
    };
    validate::references(&mut services, &defined, &file_of, &mut warnings)?;
    validate::no_cycle(&services, &file_of)?;

    let active = profiles::active(&active_profiles, named_services, &services)?;
    let (mut services, disabled_services) =
        profiles::select(services, &active, &file_of, &mut warnings)?;

    // Services that declare no network (and no network_mode) join `default`.
    for s in &mut services {
        if s.networks.is_empty() && s.network_mode.is_none() {
            s.networks
                .insert("default".to_owned(), ServiceNetwork::default());
        }
    }
    if services.iter().any(|s| s.networks.contains_key("default"))
        && !networks.contains_key("default")
    {
        networks.insert(
            "default".to_owned(),
            NetworkDef {
                name: format!("{name}_default"),
                ..NetworkDef::default()
            },
        );
    }
    let working_dir = loader
        .layers
        .first()
        .map(|l| l.dir.clone())
        .unwrap_or_default();
    Ok(Project {
        name,
        working_dir,
        compose_files: files,
        services,
        networks,
        volumes,
        secrets,
        configs,
        disabled_services,
        warnings,
    })
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The real name of the network declared under `key`.
    pub fn network_name(&self, key: &str) -> String {
        self.networks
            .get(key)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// The real name of the volume declared under `key`.
    pub fn volume_name(&self, key: &str) -> String {
        self.volumes
            .get(key)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// `container_name`, else `PROJECT-SERVICE-N` (N from 1).
    pub fn container_name(&self, service: &Service, number: u32) -> String {
        match &service.container_name {
            Some(n) => n.clone(),
            None => format!("{}-{}-{number}", self.name, service.name),
        }
    }

    /// The image a service runs: `image`, else the one its build makes
    /// (`PROJECT-SERVICE`, as docker compose names it).
    pub fn image_name(&self, service: &Service) -> String {
        match &service.image {
            Some(i) => i.clone(),
            None => format!("{}-{}", self.name, service.name),
        }
    }

    /// The service's labels plus compose's own, which find the project's
    /// containers again and tell whether one is out of date.
    pub fn container_labels(&self, service: &Service, number: u32) -> BTreeMap<String, String> {
        let mut labels = service.labels.clone();
        let files: Vec<String> = self
            .compose_files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let depends_on: Vec<String> = service
            .depends_on
            .iter()
            .map(|(name, d)| {
                let condition = match d.condition {
                    super::model::DependencyCondition::Started => "service_started",
                    super::model::DependencyCondition::Healthy => "service_healthy",
                    super::model::DependencyCondition::CompletedSuccessfully => {
                        "service_completed_successfully"
                    }
                };
                format!("{name}:{condition}:{}", d.restart)
            })
            .collect();
        for (k, v) in [
            ("com.docker.compose.project", self.name.clone()),
            ("com.docker.compose.service", service.name.clone()),
            ("com.docker.compose.container-number", number.to_string()),
            (
                "com.docker.compose.config-hash",
                super::hash::config_hash(service),
            ),
            ("com.docker.compose.oneoff", "False".to_owned()),
            (
                "com.docker.compose.project.working_dir",
                self.working_dir.display().to_string(),
            ),
            ("com.docker.compose.project.config_files", files.join(",")),
            ("com.docker.compose.depends_on", depends_on.join(",")),
        ] {
            labels.insert(k.to_owned(), v);
        }
        labels
    }

    /// `config`: the resolved model as YAML, as `docker compose config` prints it.
    pub fn to_yaml(&self) -> String {
        super::output::to_yaml(self)
    }

    /// The services to start, dependencies first: all of them when
    /// `selected` is empty, else the selected ones (and, with `with_deps`,
    /// everything they depend on). Ties keep file order; a cycle is an error.
    pub fn dependency_order(
        &self,
        selected: &[String],
        with_deps: bool,
    ) -> std::result::Result<Vec<String>, ComposeError> {
        for name in selected {
            if self.service(name).is_none() {
                return Err(ComposeError::Project(format!("no such service: {name}")));
            }
        }
        let mut wanted: BTreeSet<String> = if selected.is_empty() {
            self.services.iter().map(|s| s.name.clone()).collect()
        } else {
            selected.iter().cloned().collect()
        };
        if with_deps {
            let mut todo: Vec<String> = wanted.iter().cloned().collect();
            while let Some(n) = todo.pop() {
                if let Some(s) = self.service(&n) {
                    for d in validate::dependencies(s) {
                        if self.service(&d).is_some() && wanted.insert(d.clone()) {
                            todo.push(d);
                        }
                    }
                }
            }
        }
        let chosen: Vec<&Service> = self
            .services
            .iter()
            .filter(|s| wanted.contains(&s.name))
            .collect();
        let mut order = Vec::new();
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        while order.len() < chosen.len() {
            // The first service (in file order) whose chosen dependencies are placed.
            let next = chosen.iter().find(|s| {
                !placed.contains(s.name.as_str())
                    && validate::dependencies(s)
                        .iter()
                        .all(|d| placed.contains(d.as_str()) || !wanted.contains(d))
            });
            match next {
                Some(s) => {
                    placed.insert(s.name.as_str());
                    order.push(s.name.clone());
                }
                None => {
                    let rest: Vec<Service> = chosen
                        .iter()
                        .filter(|s| !placed.contains(s.name.as_str()))
                        .map(|s| (*s).clone())
                        .collect();
                    let cycle = validate::find_cycle(&rest)
                        .map(|c| c.join(" -> "))
                        .unwrap_or_default();
                    return Err(ComposeError::Project(format!("dependency cycle: {cycle}")));
                }
            }
        }
        Ok(order)
    }
}
