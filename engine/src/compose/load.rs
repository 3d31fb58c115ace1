//! `load`: from the command line's options to a [`Project`]. Finds the
//! compose files (as docker compose v2: `compose.yaml`, `compose.yml`,
//! `docker-compose.yml`, `docker-compose.yaml` in the working directory or
//! the nearest parent that has one, plus a `compose.override.*` beside it),
//! builds the interpolation environment (the shell over `.env` or the
//! `--env-file`s), reads every file, merges them and hands the result to
//! project.rs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_yaml::{Mapping, Value};

use super::error::{ComposeError, Result};
use super::interpolate::Interpolator;
use super::model::Project;
use super::normalize::{self, Base};
use super::reader::Reader;
use super::{dotenv, include, merge, paths, project, yaml};

/// What `skiffctl compose`'s global flags say.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f`, in order (later files merge over earlier ones); `-` is standard
    /// input. Empty: `COMPOSE_FILE`, else the files found as docker compose does.
    pub files: Vec<PathBuf>,
    /// `-p`; else `COMPOSE_PROJECT_NAME`, the files' `name:`, or the project
    /// directory's name, normalised.
    pub project_name: Option<String>,
    /// `--project-directory`; else the first compose file's directory.
    pub project_directory: Option<PathBuf>,
    /// `--env-file`s, in order; empty: `.env` in the project directory.
    pub env_files: Vec<PathBuf>,
    /// `--profile`s; empty: `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// The shell's environment (passed in so tests can choose it).
    pub environment: BTreeMap<String, String>,
    /// Services named on the command line: their profiles become active
    /// (compose's rule), and naming an unknown service is an error.
    pub services: Vec<String>,
    /// Where relative paths of the options and the file search start; None:
    /// the process's working directory.
    pub cwd: Option<PathBuf>,
}

// docker compose v2's names, in its order of preference.
const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];
const STDIN: &str = "-";

/// Loads, merges, resolves and checks a compose project.
pub fn load(opts: &LoadOptions) -> std::result::Result<Project, ComposeError> {
    let cwd = match &opts.cwd {
        Some(d) if d.is_absolute() => d.clone(),
        given => {
            let here = std::env::current_dir().map_err(|e| {
                ComposeError::Project(format!("cannot read the working directory: {e}"))
            })?;
            given.as_ref().map_or(here.clone(), |d| here.join(d))
        }
    };
    let home = opts
        .environment
        .get("HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut loader = Loader::new(paths::clean(&cwd), home);
    let files = loader.compose_files(opts)?;
    let project_dir = match &opts.project_directory {
        Some(d) => paths::clean(&loader.cwd.join(d)),
        None => files
            .first()
            .and_then(|f| f.parent())
            .filter(|_| files.first().is_some_and(|f| f.as_os_str() != STDIN))
            .map(Path::to_path_buf)
            .unwrap_or_else(|| loader.cwd.clone()),
    };
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let dotenv = project_dir.join(".env");
        if dotenv.is_file() {
            vec![dotenv]
        } else {
            Vec::new()
        }
    } else {
        opts.env_files
            .iter()
            .map(|f| paths::clean(&loader.cwd.join(f)))
            .collect()
    };
    let mut env = loader.environment(&opts.environment, &env_files)?;
    let name = loader.project_name(opts, &env, &files, &project_dir)?;
    env.entry("COMPOSE_PROJECT_NAME".to_owned())
        .or_insert_with(|| name.clone());
    let profiles = if opts.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.profiles.clone()
    };
    loader.layers.push(Layer {
        dir: project_dir.clone(),
        env: Rc::new(env),
    });

    let mut merged = Mapping::new();
    let mut origins = Origins::new();
    for file in &files {
        let doc = loader.main_document(0, file, &project_dir)?;
        origins.record(&doc, &loader.display(file), 0);
        merge::documents(&mut merged, doc);
    }
    let mut stack: Vec<PathBuf> = files.clone();
    include::apply(&mut loader, &mut merged, 0, &mut origins, &mut stack)?;
    let mut merged = Value::Mapping(merged);
    yaml::strip_merge_tags(&mut merged);
    let Value::Mapping(merged) = merged else {
        return Err(ComposeError::Project(
            "internal error: lost the model".into(),
        ));
    };
    let main_file = files.first().map(|f| loader.display(f)).unwrap_or_default();
    project::build(project::Input {
        loader: &mut loader,
        doc: merged,
        name,
        origins,
        main_file,
        files,
        profiles,
        named_services: &opts.services,
    })
}

/// A project and its sub-projects (`include`): each has its own directory
/// for relative paths and its own interpolation environment.
pub(crate) struct Layer {
    pub(crate) dir: PathBuf,
    pub(crate) env: Rc<BTreeMap<String, String>>,
}

/// Which file (and layer) each service and resource came from, for errors
/// and for resolving its values.
#[derive(Default)]
pub(crate) struct Origins {
    pub(crate) of: BTreeMap<(String, String), (String, usize)>,
}

impl Origins {
    pub(crate) fn new() -> Self {
        Origins::default()
    }

    /// Records the first file that defines each service and resource.
    pub(crate) fn record(&mut self, doc: &Mapping, file: &str, layer: usize) {
        for section in ["services", "networks", "volumes", "secrets", "configs"] {
            if let Some(Value::Mapping(m)) = doc.get(section) {
                for key in m.keys() {
                    let k = yaml::key_string(key).unwrap_or_default();
                    self.of
                        .entry((section.to_owned(), k))
                        .or_insert_with(|| (file.to_owned(), layer));
                }
            }
        }
    }

    pub(crate) fn get(&self, section: &str, key: &str) -> Option<&(String, usize)> {
        self.of.get(&(section.to_owned(), key.to_owned()))
    }
}

type FileKey = (usize, PathBuf, PathBuf);

pub(crate) struct Loader {
    pub(crate) cwd: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) warnings: Vec<String>,
    pub(crate) layers: Vec<Layer>,
    texts: BTreeMap<PathBuf, String>,
    raw: BTreeMap<FileKey, Rc<Mapping>>,
    /// `-f` files as the user wrote them, for messages.
    given: BTreeMap<PathBuf, String>,
    pub(crate) resolved: BTreeMap<(FileKey, String), Mapping>,
}

impl Loader {
    fn new(cwd: PathBuf, home: PathBuf) -> Self {
        Loader {
            cwd,
            home,
            warnings: Vec::new(),
            layers: Vec::new(),
            texts: BTreeMap::new(),
            raw: BTreeMap::new(),
            given: BTreeMap::new(),
            resolved: BTreeMap::new(),
        }
    }

    pub(crate) fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }

    /// A file as the user knows it: as written with `-f`, else relative to
    /// the working directory when inside it, else absolute.
    pub(crate) fn display(&self, path: &Path) -> String {
        if let Some(given) = self.given.get(path) {
            return given.clone();
        }
        match path.strip_prefix(&self.cwd) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            _ => path.to_string_lossy().into_owned(),
        }
    }

    /// The compose files to load, absolute.
    fn compose_files(&mut self, opts: &LoadOptions) -> Result<Vec<PathBuf>> {
        let named: Vec<PathBuf> = if !opts.files.is_empty() {
            opts.files.clone()
        } else if let Some(list) = opts
            .environment
            .get("COMPOSE_FILE")
            .filter(|l| !l.is_empty())
        {
            let sep = opts
                .environment
                .get("COMPOSE_PATH_SEPARATOR")
                .cloned()
                .unwrap_or_else(|| ":".to_owned());
            list.split(sep.as_str())
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        } else {
            return self.find_files(opts);
        };
        let mut out = Vec::new();
        for f in named {
            if f.as_os_str() == STDIN {
                out.push(f);
                continue;
            }
            let abs = paths::clean(&self.cwd.join(&f));
            if !abs.is_file() {
                return Err(ComposeError::Project(format!(
                    "compose file {}: no such file",
                    f.display()
                )));
            }
            self.given
                .entry(abs.clone())
                .or_insert_with(|| f.to_string_lossy().into_owned());
            out.push(abs);
        }
        Ok(out)
    }

    /// docker compose v2's search: the start directory, then its parents.
    fn find_files(&mut self, opts: &LoadOptions) -> Result<Vec<PathBuf>> {
        let start = match &opts.project_directory {
            Some(d) => paths::clean(&self.cwd.join(d)),
            None => self.cwd.clone(),
        };
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            let found: Vec<PathBuf> = FILE_NAMES
                .iter()
                .map(|n| d.join(n))
                .filter(|p| p.is_file())
                .collect();
            if let Some(first) = found.first() {
                if found.len() > 1 {
                    let names: Vec<String> =
                        found.iter().map(|p| p.display().to_string()).collect();
                    self.warn(format!(
                        "Found multiple config files with supported names: {}; using {}",
                        names.join(", "),
                        first.display()
                    ));
                }
                let mut files = vec![first.clone()];
                if let Some(o) = OVERRIDE_NAMES
                    .iter()
                    .map(|n| d.join(n))
                    .find(|p| p.is_file())
                {
                    files.push(o);
                }
                return Ok(files);
            }
            dir = d.parent();
        }
        Err(ComposeError::Project(format!(
            "no configuration file provided: none of {} found in {} or its parents",
            FILE_NAMES.join(", "),
            start.display()
        )))
    }

    /// The interpolation environment: the env files in order (each may use
    /// the shell's and the earlier files' variables), the shell over them.
    fn environment(
        &mut self,
        shell: &BTreeMap<String, String>,
        env_files: &[PathBuf],
    ) -> Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        for file in env_files {
            let display = self.display(file);
            let text = std::fs::read_to_string(file)
                .map_err(|e| ComposeError::file(&display, format!("cannot read env file: {e}")))?;
            let so_far = env.clone();
            let lookup = |k: &str| shell.get(k).or_else(|| so_far.get(k)).cloned();
            let mut warnings = Vec::new();
            let vars = dotenv::parse(&text, &lookup, &mut warnings)
                .map_err(|m| ComposeError::file(&display, m))?;
            for w in warnings {
                self.warn(format!("{display}: {w}"));
            }
            env.extend(vars);
        }
        env.extend(shell.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(env)
    }

    /// `-p`, `COMPOSE_PROJECT_NAME`, the last file's `name:`, or the
    /// project directory's name normalised.
    fn project_name(
        &mut self,
        opts: &LoadOptions,
        env: &BTreeMap<String, String>,
        files: &[PathBuf],
        project_dir: &Path,
    ) -> Result<String> {
        if let Some(n) = &opts.project_name {
            project::check_project_name(n).map_err(ComposeError::Project)?;
            return Ok(n.clone());
        }
        if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
            project::check_project_name(n)
                .map_err(|m| ComposeError::Project(format!("COMPOSE_PROJECT_NAME: {m}")))?;
            return Ok(n.clone());
        }
        let mut from_file = None;
        for file in files {
            let display = self.display(file);
            let text = self.read_text(file)?;
            let doc = yaml::parse_document(&text, &display)?;
            if let Some(mut name) = doc.get("name").cloned() {
                let lookup = |k: &str| env.get(k).cloned();
                let mut i = Interpolator::new(&lookup);
                i.value(&mut name, "name", &display, false)?;
                let n = yaml::scalar_string(&name)
                    .ok_or_else(|| ComposeError::field(&display, "name", "must be a string"))?;
                project::check_project_name(&n)
                    .map_err(|m| ComposeError::field(&display, "name", m))?;
                from_file = Some(n);
            }
        }
        if let Some(n) = from_file {
            return Ok(n);
        }
        let base = project_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = project::normalize_project_name(&base);
        if name.is_empty() {
            return Err(ComposeError::Project(format!(
                "cannot make a project name of the directory name {base:?}: use -p"
            )));
        }
        Ok(name)
    }

    fn read_text(&mut self, path: &Path) -> Result<String> {
        if let Some(t) = self.texts.get(path) {
            return Ok(t.clone());
        }
        let display = self.display(path);
        let text = if path.as_os_str() == STDIN {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                .map_err(|e| ComposeError::file(&display, format!("cannot read: {e}")))?;
            t
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| ComposeError::file(&display, format!("cannot read: {e}")))?
        };
        self.texts.insert(path.to_path_buf(), text.clone());
        Ok(text)
    }

    /// One file parsed, interpolated with its layer's variables and
    /// normalised with relative paths against `base` (extends not resolved).
    pub(crate) fn raw(&mut self, layer: usize, path: &Path, base: &Path) -> Result<Rc<Mapping>> {
        let key = (layer, path.to_path_buf(), base.to_path_buf());
        if let Some(doc) = self.raw.get(&key) {
            return Ok(doc.clone());
        }
        let display = self.display(path);
        let text = self.read_text(path)?;
        let doc = yaml::parse_document(&text, &display)?;
        let env = self
            .layers
            .get(layer)
            .map(|l| l.env.clone())
            .unwrap_or_default();
        let lookup = |k: &str| env.get(k).cloned();
        let mut interpolator = Interpolator::new(&lookup);
        let mut value = Value::Mapping(doc);
        interpolator.value(&mut value, "", &display, true)?;
        for w in std::mem::take(&mut interpolator.warnings) {
            self.warn(w);
        }
        let Value::Mapping(mut doc) = value else {
            return Err(ComposeError::file(
                &display,
                "internal error: not a mapping",
            ));
        };
        if doc.contains_key("version") {
            self.warn(format!(
                "{display}: the attribute `version` is obsolete, it will be ignored"
            ));
        }
        let file_dir = if path.as_os_str() == STDIN {
            self.cwd.clone()
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let home = self.home.clone();
        let mut warnings = Vec::new();
        let mut reader = Reader {
            file: display,
            warnings: &mut warnings,
        };
        normalize::document(
            &mut reader,
            &mut doc,
            &Base {
                dir: base,
                file_dir: &file_dir,
                home: &home,
            },
        )?;
        let mut reader = Reader {
            file: self.display(path),
            warnings: &mut warnings,
        };
        project::check_file(&mut reader, &doc, &env, &home, base)?;
        for w in warnings {
            self.warn(w);
        }
        let doc = Rc::new(doc);
        self.raw.insert(key, doc.clone());
        Ok(doc)
    }

    /// A file with every service's `extends` resolved.
    pub(crate) fn main_document(
        &mut self,
        layer: usize,
        path: &Path,
        base: &Path,
    ) -> Result<Mapping> {
        let mut doc = (*self.raw(layer, path, base)?).clone();
        let names: Vec<String> = match doc.get("services") {
            Some(Value::Mapping(m)) => m
                .iter()
                .filter(|(_, v)| v.is_mapping())
                .filter_map(|(k, _)| yaml::key_string(k))
                .collect(),
            _ => Vec::new(),
        };
        for name in names {
            let svc = self.resolve_service(layer, path, base, &name, &mut Vec::new())?;
            if let Some(Value::Mapping(services)) = doc.get_mut("services") {
                services.insert(Value::String(name), Value::Mapping(svc));
            }
        }
        Ok(doc)
    }
}
