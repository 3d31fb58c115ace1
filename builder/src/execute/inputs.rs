//! What steps read besides their instruction, for their cache keys: finished stages' keys,
//! a RUN's environment and bind-mount sources, the content of the context files a COPY
//! reads (through the stat cache).

use super::*;

impl Executor<'_> {
    /// The key of a finished stage.
    pub(super) fn stage_key(&self, index: usize, step: &str) -> Result<Digest> {
        lock(&self.results)
            .done
            .get(&index)
            .map(|s| s.key.clone())
            .ok_or_else(|| BuildError::step(step, format!("stage {index} was not built")))
    }

    /// What a RUN reads besides its instruction, for its key: its environment (build args
    /// included) and the sources of its bind mounts (a stage's key, an image's manifest, or
    /// the content of the context files under the source, all of them: the mount shows
    /// what .dockerignore excludes too).
    pub(super) fn run_inputs(
        &self,
        mounts: &[crate::frontend::Mount],
        state: &StageState,
        step: &str,
    ) -> Result<String> {
        let mut out: Vec<String> = state
            .vars
            .run_env()
            .iter()
            .map(|(k, v)| format!("env {k}={v}"))
            .collect();
        for m in mounts {
            if m.kind != crate::frontend::MountType::Bind {
                continue;
            }
            match &m.from {
                None => {
                    let source = m.source.clone().unwrap_or_else(|| "/".to_owned());
                    let context = &self.opts.context;
                    let job = CopyJob {
                        src_root: context,
                        ignore: None,
                        exclude: None,
                        sources: vec![CopySource::Path(source.clone())],
                        dest: "/".to_owned(),
                        dest_root: context,
                        owner: None,
                        chmod: None,
                        extract_archives: false,
                        parents: false,
                    };
                    let digest = self.context_digest(&job.inputs(step)?)?;
                    out.push(format!("bind context {source} {digest}"));
                }
                Some(from) => {
                    let source = match crate::frontend::resolve_copy_from(self.df, from)
                        .map_err(|e| BuildError::step(step, e))?
                    {
                        StageRef::Stage(i) => self.stage_key(i, step)?.to_string(),
                        StageRef::Image(name) => base::load_base(
                            self.store,
                            &self.opts.contexts,
                            &self.opts.registry,
                            &name,
                        )?
                        .manifest
                        .to_string(),
                    };
                    out.push(format!("bind {from} {source}"));
                }
            }
        }
        Ok(out.join("\n"))
    }

    /// A digest of the context files a COPY reads: each path with its type, mode, owner,
    /// and content (files) or target (symlinks); mtimes left out.
    pub(super) fn context_digest(&self, inputs: &[copy::Input]) -> Result<String> {
        use std::os::unix::fs::MetadataExt;
        let mut h = Hasher::new(skiff_specs::Algorithm::Sha256);
        for copy::Input { rel, host, meta } in inputs {
            let what = if meta.is_file() {
                let digest = self
                    .stat
                    .digest(rel, host, meta)
                    .map_err(BuildError::io(host))?;
                format!(
                    "file {:o} {} {} {digest}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid()
                )
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(host).map_err(BuildError::io(host))?;
                format!(
                    "link {} {} {}",
                    meta.uid(),
                    meta.gid(),
                    target.to_string_lossy()
                )
            } else {
                format!("other {:o} {} {}", meta.mode(), meta.uid(), meta.gid())
            };
            h.update(rel.as_bytes());
            h.update(b"\0");
            h.update(what.as_bytes());
            h.update(b"\0");
        }
        Ok(h.finish().to_string())
    }
}
