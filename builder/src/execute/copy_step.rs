//! COPY and ADD as a step: sources resolved (context, stage, image, URL), the step's key
//! from the content of what it reads, the copy run on the stage's snapshot.

use super::*;

impl Executor<'_> {
    pub(super) fn copy_step(
        &self,
        state: &mut StageState,
        inst: &Located<Instruction>,
        expanded: &Instruction,
    ) -> Result<()> {
        let step = inst.source.as_str();
        let (files, from, add) = match expanded {
            Instruction::Copy(c) => (&c.files, self.plan.copy_from(self.df, inst)?, false),
            Instruction::Add(a) => (&a.files, None, true),
            _ => return Ok(()),
        };
        let parents = matches!(expanded, Instruction::Copy(c) if c.parents);
        let exclude = if files.excludes.is_empty() {
            None
        } else {
            Some(
                DockerIgnore::parse("--exclude", &files.excludes.join("\n"))
                    .map_err(|e| BuildError::step(step, e.to_string()))?,
            )
        };
        // --link: the files go into an empty snapshot, so the layer does not depend on the
        // ones below it (user names in --chown then need the numeric form).
        let isolated = files.link;
        let checksum = match expanded {
            Instruction::Add(a) => a.checksum.as_deref(),
            _ => None,
        };
        let mut remotes = fetch::Remotes::new(
            step,
            checksum,
            &files.sources,
            cache_root(&self.opts.store).join("http"),
            !self.opts.no_cache,
        )?;
        let mut sources = Vec::new();
        for s in &files.sources {
            sources.push(match s {
                Source::Path(p) if add && fetch::is_url(p) => remotes.add(p)?,
                // BuildKit's words: COPY only reads the context or a stage.
                Source::Path(p) if fetch::is_url(p) => {
                    return Err(BuildError::step(
                        step,
                        format!("source can't be a URL for COPY: {p}"),
                    ))
                }
                Source::Path(p) => CopySource::Path(p.clone()),
                Source::Heredoc(h) => CopySource::Inline {
                    name: h.name.clone(),
                    content: h.content.clone(),
                },
            });
        }
        let chmod = files
            .chmod
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        BuildError::step(step, format!("--chmod={m}: not an octal mode"))
                    })
            })
            .transpose()?;
        let workdir = state
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_owned());
        let mut dest = resolve::absolute(&workdir, &files.dest);
        if files.dest.ends_with('/') || files.dest == "." || files.dest.ends_with("/.") {
            dest.push('/');
        }
        // The layers of `--from`'s rootfs; unpacked and mounted only when the
        // copy really runs (a cached step reads none of them).
        let from_ref = from.clone();
        let from_lowers = match from {
            Some(StageRef::Stage(i)) => Some(self.stage_layers(i, step)?),
            Some(StageRef::Image(name)) => {
                let image =
                    base::load_base(self.store, &self.opts.contexts, &self.opts.registry, &name)?;
                Some(self.extract_all(&image)?)
            }
            None => None,
        };
        let context = self.opts.context.clone();
        let ignore = self.ignore.clone();
        let chown = files.chown.clone();
        // What the copy reads goes into the key: the source stage's key or image, or the
        // content and metadata of the context files it copies.
        let reads = match &from_ref {
            Some(StageRef::Stage(i)) => self.stage_key(*i, step)?.to_string(),
            Some(StageRef::Image(name)) => {
                base::load_base(self.store, &self.opts.contexts, &self.opts.registry, name)?
                    .manifest
                    .to_string()
            }
            None => {
                let job = CopyJob {
                    src_root: &context,
                    ignore: Some(&ignore),
                    exclude: exclude.as_ref(),
                    sources: sources.clone(),
                    dest: dest.clone(),
                    dest_root: &context,
                    owner: None,
                    chmod,
                    extract_archives: add,
                    parents,
                };
                self.context_digest(&job.inputs(step)?)? + &remotes.key_inputs()?
            }
        };
        state.key = key_of(&[&state.key.to_string(), &reads]);
        self.fs_step_on(state, inst, isolated, |_, root| {
            let sources = remotes.fetch(sources)?;
            let owner = match &chown {
                None => (0, 0),
                Some(spec) => {
                    let u = skiff_specs::user::resolve_user(root, spec)
                        .map_err(|e| BuildError::step(step, format!("--chown={spec}: {e}")))?;
                    // As in docker build: a user without a group means gid = uid.
                    match split_user(spec) {
                        (_, Some(_)) => (u.uid, u.gid),
                        (_, None) => (u.uid, u.uid),
                    }
                }
            };
            let source_snapshot = match &from_lowers {
                Some(lowers) => {
                    let dirs = self.lower_dirs(lowers)?;
                    Some(Snapshot::mount(&self.new_dir("from"), &dirs)?)
                }
                None => None,
            };
            let (src_root, ignore) = match &source_snapshot {
                Some(s) => (s.merged.as_path(), None),
                None => (context.as_path(), Some(&ignore)),
            };
            CopyJob {
                src_root,
                ignore,
                exclude: exclude.as_ref(),
                sources,
                dest,
                dest_root: root,
                owner: Some(owner),
                chmod,
                extract_archives: add,
                parents,
            }
            .run(step)
        })
    }
}
