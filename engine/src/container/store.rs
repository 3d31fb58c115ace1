//! The containers directory: one directory per container id holding its
//! record, the monitor's state, the bundle and its writable layer.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use skiff_specs::monitor::write_atomic;

use super::record::Container;

pub const RECORD: &str = "container.json";

#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
}

/// Files of one container, by purpose.
#[derive(Debug, Clone)]
pub struct ContainerDir(pub PathBuf);

impl ContainerDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn record(&self) -> PathBuf {
        self.0.join(RECORD)
    }
    /// The monitor's MonitorState.
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }
    /// The OCI bundle (config.json, monitor.json, rootfs mount point).
    pub fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }
    /// The container's writable layer and overlayfs' work dir.
    pub fn upper(&self) -> PathBuf {
        self.0.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.0.join("work")
    }
    /// docker's json-file log.
    pub fn log(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}-json.log"))
    }
    pub fn hosts(&self) -> PathBuf {
        self.0.join("hosts")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.0.join("resolv.conf")
    }
    pub fn hostname(&self) -> PathBuf {
        self.0.join("hostname")
    }
    /// Exists while the user stops the container (the restart policy must
    /// not start it again).
    pub fn stop_marker(&self) -> PathBuf {
        self.0.join("stopping")
    }
    /// The stdin FIFO of a container with `-i`.
    pub fn stdin_fifo(&self) -> PathBuf {
        self.0.join("stdin")
    }
}

impl ContainerStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self, id: &str) -> ContainerDir {
        ContainerDir(self.dir.join(id))
    }

    /// Every container with a readable record, oldest first.
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join(RECORD);
            match fs::read(&path) {
                Ok(bytes) => match serde_json::from_slice::<Container>(&bytes) {
                    Ok(c) => out.push(c),
                    Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
                },
                // A container being created or removed right now.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        let path = self.dir(id).record();
        let bytes = fs::read(&path).with_context(|| format!("No such container: {id}"))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: invalid record", path.display()))
    }

    pub fn save(&self, c: &Container) -> Result<()> {
        let dir = self.dir(&c.id);
        fs::create_dir_all(dir.path())
            .with_context(|| format!("cannot create {}", dir.path().display()))?;
        let bytes = serde_json::to_vec_pretty(c)?;
        write_atomic(&dir.record(), &bytes)
            .with_context(|| format!("cannot write {}", dir.record().display()))
    }

    /// The container a user means by `name_or_id`: an exact id, an exact
    /// name (with or without docker's leading `/`), or a unique id prefix.
    pub fn find(&self, name_or_id: &str) -> Result<Container> {
        let want = name_or_id.trim_start_matches('/');
        if want.is_empty() {
            bail!("No such container: {name_or_id}");
        }
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.id == want || c.name == want) {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = all.iter().filter(|c| c.id.starts_with(want)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => bail!("No such container: {name_or_id}"),
            _ => bail!("Multiple IDs found with provided prefix: {name_or_id}"),
        }
    }

    /// Whether `name` is taken by another container.
    pub fn name_taken(&self, name: &str) -> Result<Option<Container>> {
        Ok(self.list()?.into_iter().find(|c| c.name == name))
    }

    /// Where containers go while their removal finishes in the background
    /// (`run --rm`): out of every listing, their names free at once.
    pub fn removing(&self) -> PathBuf {
        self.dir.join(".removing")
    }

    /// The directory of a container being removed.
    pub fn removing_dir(&self, id: &str) -> ContainerDir {
        ContainerDir(self.removing().join(id))
    }

    /// Moves a container out of the listings (see `removing`).
    pub fn begin_removal(&self, id: &str) -> Result<ContainerDir> {
        let to = self.removing();
        fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
        let from = self.dir(id);
        let dest = self.removing_dir(id);
        fs::rename(from.path(), dest.path())
            .with_context(|| format!("cannot move {} aside", from.path().display()))?;
        Ok(dest)
    }

    /// Ids of containers whose removal has not finished.
    pub fn removing_ids(&self) -> Vec<String> {
        fs::read_dir(self.removing())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect()
    }

    /// The record of a container being removed.
    pub fn load_removing(&self, id: &str) -> Result<Container> {
        let path = self.removing_dir(id).record();
        let bytes = fs::read(&path).with_context(|| format!("No such container: {id}"))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: invalid record", path.display()))
    }

    /// Removes a container's directory (its writable layer included).
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(dir.path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.path().display())),
        }
    }
}
