//! Running a plan: each stage from its base through its instructions. Steps that touch the
//! filesystem (RUN, COPY, ADD, WORKDIR) run on an overlay snapshot of the stage's layers and
//! turn what they changed into a new layer; the others change only the image config. Each
//! step gets a key: its parent's key and the expanded instruction, plus what else it reads
//! (a RUN's environment and bind-mount sources, the content of COPY/ADD sources). A
//! filesystem step whose key is in the build cache reuses the recorded layer instead of
//! running.

mod archive_format;
mod base;
mod cache;
mod commit;
mod config;
mod copy;
mod copy_step;
pub mod diff;
mod fetch;
mod history;
mod inputs;
mod mounts;
mod resolve;
mod run;
mod snapshot;
mod stat_cache;
mod url_cache;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use skiff_specs::{ContainerConfig, Descriptor, Digest, Hasher, History, Store};

use history::settle_times;

use crate::error::{BuildError, Result};
use crate::frontend::{
    split_user, DockerIgnore, Dockerfile, Instruction, Located, RunCommand, Source, StageRef,
    StageVars,
};
use crate::options::BuildOptions;
use crate::plan::{Base, Plan};
use crate::progress::{Progress, Step};

pub use base::BaseImage;
pub use cache::cache_root;
pub use copy::{CopyJob, CopySource};
pub use resolve::resolve_in;
pub use snapshot::Snapshot;

/// The shell for shell-form commands when no SHELL instruction set one.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A layer of a stage: its blob, its diff_id and a directory with its content in overlayfs
/// lower-layer form. Layers of a base image or from the cache are unpacked into `dir` only
/// when a step needs them ([`Executor::lower_dirs`]), so a fully cached build reads none.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Descriptor,
    pub diff_id: Digest,
    pub dir: PathBuf,
}

/// A stage as built so far.
#[derive(Debug, Clone)]
pub struct StageState {
    pub layers: Vec<Layer>,
    pub config: ContainerConfig,
    pub history: Vec<History>,
    pub author: Option<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub vars: StageVars,
    pub shell: Vec<String>,
    /// Whether this stage set CMD (an ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The last step's key.
    pub key: Digest,
    /// The step being run, for its command output.
    step: Option<Step>,
    /// Whether the last step came from the build cache.
    hit: bool,
    /// The image's `created`, once the build settled it (else the build's time).
    pub created: Option<String>,
}

/// Finished stages, shared by the stage threads.
#[derive(Debug, Default)]
struct Results {
    done: BTreeMap<usize, StageState>,
    /// A stage failed: the others stop at their next step.
    failed: bool,
}

/// Runs the stages of a plan.
#[derive(Debug)]
pub struct Executor<'a> {
    opts: &'a BuildOptions,
    store: &'a Store,
    df: &'a Dockerfile,
    plan: &'a Plan,
    work: &'a Path,
    ignore: DockerIgnore,
    progress: Mutex<Progress>,
    results: Mutex<Results>,
    /// Signalled whenever a stage finishes or fails.
    finished: Condvar,
    /// Where each layer blob is (or will be) unpacked.
    extracted: Mutex<HashMap<Digest, PathBuf>>,
    /// Held while unpacking, so two stages never unpack the same blob at once.
    unpacking: Mutex<()>,
    dirs: AtomicUsize,
    /// History timestamps.
    created: String,
    /// SOURCE_DATE_EPOCH: the cap for layer mtimes.
    clamp: Option<u64>,
    cache: cache::Cache,
    /// Digests of context files.
    stat: stat_cache::StatCache,
    /// Makes the layers of finished steps while later steps run.
    committer: commit::Committer,
}

/// Locks a mutex; a thread that panicked while holding it leaves consistent data here
/// (every update is a single insert), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key_of(parts: &[&str]) -> Digest {
    let mut h = Hasher::new(skiff_specs::Algorithm::Sha256);
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    h.finish()
}

impl<'a> Executor<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opts: &'a BuildOptions,
        store: &'a Store,
        df: &'a Dockerfile,
        plan: &'a Plan,
        work: &'a Path,
        ignore: DockerIgnore,
        created: String,
        clamp: Option<u64>,
    ) -> Self {
        Executor {
            opts,
            store,
            df,
            plan,
            work,
            ignore,
            progress: Mutex::new(Progress::new(opts.progress)),
            results: Mutex::new(Results::default()),
            finished: Condvar::new(),
            extracted: Mutex::new(HashMap::new()),
            unpacking: Mutex::new(()),
            dirs: AtomicUsize::new(0),
            created,
            clamp,
            cache: cache::Cache::new(&opts.store, !opts.no_cache, opts.compression.kind()),
            stat: stat_cache::StatCache::load(stat_cache::file_for(
                &cache_root(&opts.store).join("stat"),
                &opts.context,
            )),
            committer: commit::Committer::default(),
        }
    }

    /// Builds every planned stage, each in its own thread as soon as the stages it reads are
    /// done (so independent stages run concurrently), and returns the target's state.
    pub fn run(&self) -> Result<StageState> {
        let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
            self.committer.start(scope, self.store, &self.cache);
            if let [index] = self.plan.order[..] {
                // One stage: no thread of its own to start and wait for.
                let outcome = self.run_stage(index);
                self.committer.stop();
                return vec![outcome];
            }
            let handles: Vec<_> = self
                .plan
                .order
                .iter()
                .map(|&index| scope.spawn(move || self.run_stage(index)))
                .collect();
            let outcomes = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(BuildError::step("build", "a stage panicked")))
                })
                .collect();
            self.committer.stop();
            outcomes
        });
        // Report the stage that failed, not those it cancelled.
        let mut cancelled = None;
        for outcome in outcomes {
            match outcome {
                Err(BuildError::Cancelled) => cancelled = Some(BuildError::Cancelled),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
        if let Some(e) = cancelled {
            return Err(e);
        }
        if let Some(e) = self.committer.take_error() {
            return Err(e);
        }
        // The stat cache is a shortcut only: failing to save it costs time, not correctness.
        if let Err(e) = self.stat.save() {
            eprintln!("skiff-build: warning: saving the context stat cache: {e}");
        }
        let mut state = lock(&self.results)
            .done
            .remove(&self.plan.target)
            .ok_or_else(|| BuildError::step("build", "the target stage was not built"))?;
        self.committer.resolve(&mut state.layers)?;
        settle_times(&mut state.history, &self.created);
        // The image is as old as its newest history entry (so a fully cached rebuild is the
        // same image); SOURCE_DATE_EPOCH, when set, is the time of everything.
        if self.clamp.is_none() {
            state.created = state.history.last().and_then(|h| h.created.clone());
        }
        Ok(state)
    }

    /// Waits for the stage's dependencies, builds it and publishes the result.
    fn run_stage(&self, index: usize) -> Result<()> {
        for &dep in &self.plan.deps[index] {
            let mut results = lock(&self.results);
            while !results.done.contains_key(&dep) {
                if results.failed {
                    return Err(BuildError::Cancelled);
                }
                results = self
                    .finished
                    .wait(results)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        let outcome = self.stage(index);
        let mut results = lock(&self.results);
        let outcome = match outcome {
            Ok(state) => {
                results.done.insert(index, state);
                Ok(())
            }
            Err(e) => {
                results.failed = true;
                Err(e)
            }
        };
        self.finished.notify_all();
        outcome
    }

    /// The layers of a finished stage.
    fn stage_layers(&self, index: usize, step: &str) -> Result<Vec<Layer>> {
        lock(&self.results)
            .done
            .get(&index)
            .map(|s| s.layers.clone())
            .ok_or_else(|| BuildError::step(step, format!("stage {index} was not built")))
    }

    fn cancelled(&self) -> bool {
        lock(&self.results).failed
    }

    fn start(&self, label: &str, text: &str) -> Step {
        lock(&self.progress).start(label, text)
    }

    /// A fresh directory under the build's work dir.
    fn new_dir(&self, what: &str) -> PathBuf {
        let n = self.dirs.fetch_add(1, Ordering::Relaxed) + 1;
        self.work.join(format!("{what}-{n}"))
    }

    fn label(&self, index: usize, pos: usize) -> String {
        let stage = &self.df.stages[index];
        let name = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"));
        format!("{name} {pos}/{}", stage.instructions.len() + 1)
    }

    fn stage(&self, index: usize) -> Result<StageState> {
        let stage = &self.df.stages[index];
        let step = self.start(&self.label(index, 1), &stage.from.source);
        let mut state = self
            .base(index)
            .inspect_err(|e| step.error(&e.to_string()))?;
        step.done();
        // The base's ONBUILD triggers run first and are not inherited.
        let triggers = state.config.on_build.take().unwrap_or_default();
        for trigger in triggers {
            let text = format!("ONBUILD {trigger}");
            if self.cancelled() {
                return Err(BuildError::Cancelled);
            }
            let step = self.start(&self.label(index, 1), &text);
            state.step = Some(step.clone());
            state.hit = false;
            let result = self.onbuild(&mut state, &trigger);
            match result {
                Ok(()) if state.hit => step.cached(),
                Ok(()) => step.done(),
                Err(e) => {
                    step.error(&e.to_string());
                    return Err(e);
                }
            }
        }
        for (pos, inst) in stage.instructions.iter().enumerate() {
            if self.cancelled() {
                return Err(BuildError::Cancelled);
            }
            let step = self.start(&self.label(index, pos + 2), &inst.source);
            state.step = Some(step.clone());
            state.hit = false;
            match self.instruction(&mut state, inst) {
                Ok(()) if state.hit => step.cached(),
                Ok(()) => step.done(),
                Err(e) => {
                    step.error(&e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(state)
    }

    fn base(&self, index: usize) -> Result<StageState> {
        let state = match self.plan.bases[index].clone() {
            Base::Scratch => {
                let host = skiff_specs::Platform::host();
                StageState {
                    layers: Vec::new(),
                    config: ContainerConfig::default(),
                    history: Vec::new(),
                    author: None,
                    os: host.os,
                    architecture: host.architecture,
                    variant: host.variant,
                    vars: StageVars::new(),
                    shell: DEFAULT_SHELL.map(String::from).to_vec(),
                    cmd_set: false,
                    step: None,
                    hit: false,
                    created: None,
                    key: key_of(&["scratch"]),
                }
            }
            Base::Stage(i) => {
                let mut s = lock(&self.results).done.get(&i).cloned().ok_or_else(|| {
                    BuildError::step(&self.df.stages[index].from.source, "stage not built")
                })?;
                s.cmd_set = false;
                s.step = None;
                s.vars = StageVars::from_image_env(&env_list(&s.config));
                s
            }
            Base::Image(name) => {
                let image =
                    base::load_base(self.store, &self.opts.contexts, &self.opts.registry, &name)?;
                let layers = self.extract_all(&image)?;
                let config = image.config.container_config();
                StageState {
                    layers,
                    vars: StageVars::from_image_env(&env_list(&config)),
                    shell: config
                        .shell
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SHELL.map(String::from).to_vec()),
                    config,
                    history: image.config.history.clone().unwrap_or_default(),
                    author: image.config.author.clone(),
                    os: image.config.os.clone(),
                    architecture: image.config.architecture.clone(),
                    variant: image.config.variant.clone(),
                    cmd_set: false,
                    step: None,
                    hit: false,
                    created: None,
                    key: key_of(&["image", &image.manifest.to_string()]),
                }
            }
        };
        Ok(state)
    }

    /// Runs one ONBUILD trigger of the base image as an instruction of stage `index`.
    fn onbuild(&self, state: &mut StageState, trigger: &str) -> Result<()> {
        let text = format!("FROM scratch\n{trigger}\n");
        let parsed = crate::frontend::parse("ONBUILD trigger", &text)?;
        let insts = parsed
            .stages
            .into_iter()
            .next()
            .map(|s| s.instructions)
            .unwrap_or_default();
        for inst in &insts {
            if matches!(inst.value, Instruction::From(_) | Instruction::Onbuild(_)) {
                return Err(BuildError::step(
                    &format!("ONBUILD {trigger}"),
                    "FROM and ONBUILD are not allowed as ONBUILD triggers",
                ));
            }
            self.instruction(state, inst)?;
        }
        Ok(())
    }

    /// A base image's layers, to be unpacked when needed.
    fn extract_all(&self, image: &BaseImage) -> Result<Vec<Layer>> {
        Ok(image
            .layers
            .iter()
            .map(|(blob, diff_id)| Layer {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
                dir: self.layer_dir(blob),
            })
            .collect())
    }

    /// The directories of `layers` for an overlay, unpacking those not unpacked yet (into a
    /// temp name renamed when complete, so an existing dir is a whole layer).
    pub fn lower_dirs(&self, layers: &[Layer]) -> Result<Vec<PathBuf>> {
        for l in layers {
            if l.dir.exists() {
                continue;
            }
            let _unpacking = lock(&self.unpacking);
            if l.dir.exists() {
                continue;
            }
            let partial = PathBuf::from(format!("{}-partial", l.dir.display()));
            std::fs::create_dir_all(&partial).map_err(BuildError::io(&partial))?;
            let unpacked =
                skiff_specs::layer::unpack_stored_layer(self.store, &l.blob, &l.diff_id, &partial);
            if let Err(e) = unpacked {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e.into());
            }
            std::fs::rename(&partial, &l.dir).map_err(BuildError::io(&l.dir))?;
        }
        Ok(layers.iter().map(|l| l.dir.clone()).collect())
    }

    fn instruction(&self, state: &mut StageState, inst: &Located<Instruction>) -> Result<()> {
        let escape = self.df.escape();
        let step = inst.source.as_str();
        let expand_err = |e: crate::frontend::ExpandError| BuildError::step(step, e.message);
        if let Instruction::Env(_) | Instruction::Arg(_) = &inst.value {
            state
                .vars
                .apply(&inst.value, &self.plan.globals, escape)
                .map_err(expand_err)?;
            state.key = key_of(&[&state.key.to_string(), step]);
            if let Instruction::Env(_) = &inst.value {
                state.config.env = Some(
                    state
                        .vars
                        .env()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                );
                self.history(state, inst, true);
            }
            return Ok(());
        }
        let expanded = inst.expanded_in(&self.df.file, escape, &state.vars)?;
        // Where a cache lookup for this step will go.
        let key = key_of(&[&state.key.to_string(), &format!("{expanded:?}")]);
        state.key = key;
        if config::apply(state, &expanded, step)? {
            self.history(state, inst, true);
            return Ok(());
        }
        let config = &mut state.config;
        match &expanded {
            Instruction::Workdir(w) => {
                let dir = resolve::absolute(config.working_dir.as_deref().unwrap_or("/"), w);
                config.working_dir = Some(dir.clone());
                let user = config.user.clone();
                // Created owned by the current USER, as BuildKit does.
                return self.fs_step(state, inst, |_, root| {
                    let owner = match user.as_deref() {
                        None | Some("") => (0, 0),
                        Some(spec) => {
                            let u = skiff_specs::user::resolve_user(root, spec)
                                .map_err(|e| BuildError::step(step, format!("USER {spec}: {e}")))?;
                            (u.uid, u.gid)
                        }
                    };
                    copy::make_dirs(root, &dir, owner, step).map(|_| ())
                });
            }
            Instruction::Run(r) => {
                let cwd = config.working_dir.clone().unwrap_or_else(|| "/".to_owned());
                let user = config.user.clone().unwrap_or_default();
                let extra = self.run_inputs(&r.mounts, state, step)?;
                state.key = key_of(&[&state.key.to_string(), &extra]);
                let mounts = self.run_mounts(&r.mounts, &cwd, step)?;
                let mut files = Vec::new();
                let args = match r.to_command() {
                    RunCommand::Exec(argv) => argv,
                    RunCommand::Shell(line) => {
                        let mut a = state.shell.clone();
                        a.push(line);
                        a
                    }
                    RunCommand::Script { path, content } => {
                        files.push((content, path.clone()));
                        let mut a = state.shell.clone();
                        a.push(path);
                        a
                    }
                };
                let network = match r.network {
                    Some(crate::frontend::Network::Host) => crate::options::NetworkMode::Host,
                    Some(crate::frontend::Network::None) => crate::options::NetworkMode::None,
                    _ => self.opts.network,
                };
                let job = run::RunJob {
                    args,
                    env: state
                        .vars
                        .run_env()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .chain(mounts.env.iter().cloned())
                        .collect(),
                    user,
                    cwd,
                    network,
                    files,
                    mounts: mounts.specs.clone(),
                };
                let runtime = self.opts.runtime.clone();
                let progress = state
                    .step
                    .clone()
                    .ok_or_else(|| BuildError::step(step, "RUN outside a step"))?;
                let n = self.dirs.fetch_add(1, Ordering::Relaxed) + 1;
                let id = format!("skiff-build-{}-{n}", std::process::id());
                let result = self.fs_step(state, inst, |dir, root| {
                    let stubs: Vec<mounts::Stub> = mounts
                        .targets
                        .iter()
                        .filter_map(|t| mounts::missing_stub(root, t))
                        .collect();
                    let result = job.run(&runtime, root, dir, &id, step, &progress);
                    for stub in stubs.iter().rev() {
                        mounts::remove_stub(root, stub);
                    }
                    result
                });
                drop(mounts);
                return result;
            }
            Instruction::Copy(_) | Instruction::Add(_) => {
                return self.copy_step(state, inst, &expanded);
            }
            _ => {}
        }
        self.history(state, inst, true);
        Ok(())
    }

    /// Runs `change` on a snapshot of the stage and records its layer (or an empty-layer
    /// history entry when nothing changed).
    fn fs_step(
        &self,
        state: &mut StageState,
        inst: &Located<Instruction>,
        change: impl FnOnce(&Path, &Path) -> Result<()>,
    ) -> Result<()> {
        self.fs_step_on(state, inst, false, change)
    }

    /// `fs_step`, on an empty snapshot when `isolated` (COPY --link). A step whose key
    /// (`state.key`) has a cache entry reuses its layer instead of running.
    fn fs_step_on(
        &self,
        state: &mut StageState,
        inst: &Located<Instruction>,
        isolated: bool,
        change: impl FnOnce(&Path, &Path) -> Result<()>,
    ) -> Result<()> {
        // Layers made under SOURCE_DATE_EPOCH differ (clamped mtimes): another key.
        if let Some(clamp) = self.clamp {
            state.key = key_of(&[&state.key.to_string(), &format!("clamp {clamp}")]);
        }
        if let Some(entry) = self.cache.get(self.store, &state.key) {
            // The time the step first ran (SOURCE_DATE_EPOCH wins).
            let created = match (self.clamp, entry.created) {
                (None, Some(t)) => t,
                _ => self.created.clone(),
            };
            match entry.layer {
                None => self.history_at(state, inst, true, Some(created)),
                Some((blob, diff_id)) => {
                    let dir = self.layer_dir(&blob);
                    state.layers.push(Layer { blob, diff_id, dir });
                    self.history_at(state, inst, false, Some(created));
                }
            }
            state.hit = true;
            return Ok(());
        }
        let dir = self.new_dir("step");
        let lowers: Vec<PathBuf> = if isolated {
            Vec::new()
        } else {
            self.lower_dirs(&state.layers)?
        };
        let mut snap = Snapshot::mount(&dir, &lowers)?;
        change(&dir, &snap.merged)?;
        snap.unmount()?;
        diff::prune_unchanged_dirs(&snap.upper, &lowers)?;
        let created = Some(self.created.clone());
        if diff::is_empty(&snap.upper)? {
            self.history_at(state, inst, true, created.clone());
            self.record(
                &state.key,
                cache::Entry {
                    layer: None,
                    created,
                },
            );
            return Ok(());
        }
        let n = self.dirs.fetch_add(1, Ordering::Relaxed);
        let job = commit::Job {
            upper: snap.upper.clone(),
            clamp: self.clamp,
            compression: self.opts.compression,
            key: state.key.clone(),
            created: created.clone(),
            id: Digest::sha256_of(format!("layer {n} of this build").as_bytes()),
        };
        state.layers.push(job.stand_in());
        self.committer.submit(job, self.store, &self.cache);
        self.history_at(state, inst, false, created);
        Ok(())
    }
}

impl Executor<'_> {
    /// Records a step's result; a cache that cannot be written costs time, not the build.
    fn record(&self, key: &Digest, entry: cache::Entry) {
        if let Err(e) = self.cache.put(key, &entry) {
            eprintln!("skiff-build: warning: writing the build cache entry {key}: {e}");
        }
    }

    /// Where the layer blob is unpacked (one directory per blob and build; see
    /// `lower_dirs`).
    fn layer_dir(&self, blob: &Descriptor) -> PathBuf {
        lock(&self.extracted)
            .entry(blob.digest.clone())
            .or_insert_with(|| self.new_dir("layer"))
            .clone()
    }
}

fn env_list(config: &ContainerConfig) -> Vec<String> {
    config.env.clone().unwrap_or_default()
}
