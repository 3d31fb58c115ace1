//! skiff-build as a library: the Dockerfile frontend (parser, word expander, .dockerignore),
//! the build plan, the executor (overlay snapshots, RUN through an OCI runtime, COPY/ADD,
//! layer diffs) and the export of the result to the store and output files.

pub mod bundle;
pub mod compress;
pub mod error;
pub mod execute;
pub mod export;
pub mod flags;
pub mod frontend;
pub mod options;
pub mod plan;
mod private_mount;
pub mod progress;
pub mod prune;
pub mod registry;
mod scratch;
mod workdir;

use std::fs;

use skiff_specs::{Descriptor, Store};

pub use error::{BuildError, Result};
pub use options::BuildOptions;

/// What a finished build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image manifest in the store.
    pub manifest: Descriptor,
}

/// `created` for the config and history: SOURCE_DATE_EPOCH when set (then also the cap on
/// layer mtimes), else now.
fn created() -> Result<(String, Option<u64>)> {
    use chrono::{DateTime, SecondsFormat, Utc};
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let secs: i64 = v.trim().parse().map_err(|_| BuildError::Option {
                option: "SOURCE_DATE_EPOCH",
                reason: format!("{v:?} is not a number of seconds"),
            })?;
            let t = DateTime::<Utc>::from_timestamp(secs, 0).ok_or_else(|| BuildError::Option {
                option: "SOURCE_DATE_EPOCH",
                reason: format!("{v:?} is out of range"),
            })?;
            Ok((
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                u64::try_from(secs).ok(),
            ))
        }
        Err(_) => Ok((Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true), None)),
    }
}

/// Runs a whole build: parse, plan, execute, export. A build whose in-memory scratch space
/// filled up runs again on disk; the steps it finished come from the cache.
pub fn build(opts: &BuildOptions) -> Result<BuildOutcome> {
    let text = fs::read_to_string(&opts.dockerfile).map_err(BuildError::io(&opts.dockerfile))?;
    let name = opts.dockerfile.file_name().map_or_else(
        || "Dockerfile".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let df = frontend::parse(&name, &text)?;
    let plan = plan::Plan::new(&df, &opts.build_args, opts.target.as_deref())?;
    let (ignore, _) =
        frontend::DockerIgnore::load(&opts.context, &opts.dockerfile).map_err(|e| {
            BuildError::Option {
                option: ".dockerignore",
                reason: e.to_string(),
            }
        })?;
    let store = Store::open(&opts.store)?;
    // Keep the store's gc away from blobs written before the image names them.
    let _lease = store.lease()?;
    let (created, clamp) = created()?;
    let run = |memory| -> std::result::Result<BuildOutcome, (BuildError, bool)> {
        let work = workdir::create(&opts.runtime).map_err(|e| (e, false))?;
        // Dropped before `work`: unmounted before the directory is removed.
        let scratch = scratch::Tmpfs::mount(work.path(), memory);
        let exec = execute::Executor::new(
            opts,
            &store,
            &df,
            &plan,
            work.path(),
            ignore.clone(),
            created.clone(),
            clamp,
        );
        execute_and_export(opts, &store, &exec, &created, work.path())
            .map_err(|e| (e, scratch.is_full()))
    };
    match run(opts.scratch) {
        Err((e, true)) => {
            eprintln!(
                "skiff-build: the in-memory scratch space filled up ({e}); building again on \
                 disk (--scratch-memory 0 starts there)"
            );
            run(options::ScratchMemory::Limit(0)).map_err(|(e, _)| e)
        }
        other => other.map_err(|(e, _)| e),
    }
}

fn execute_and_export(
    opts: &BuildOptions,
    store: &Store,
    exec: &execute::Executor,
    created: &str,
    work: &std::path::Path,
) -> Result<BuildOutcome> {
    let mut state = exec.run()?;
    // A cached build unpacked nothing; a local output needs the final rootfs's layers.
    if opts
        .outputs
        .iter()
        .any(|o| matches!(o, options::Output::Local(_)))
    {
        exec.lower_dirs(&state.layers)?;
    }
    if !opts.labels.is_empty() {
        let labels = state.config.labels.get_or_insert_with(Default::default);
        labels.extend(opts.labels.clone());
    }
    let manifest = export::write_image(store, &state, created, &opts.tags)?;
    let reference = opts
        .tags
        .first()
        .map_or_else(|| manifest.digest.to_string(), |t| export::normalize_tag(t));
    for output in &opts.outputs {
        export::write_output(store, &reference, &state, output, work)?;
    }
    Ok(BuildOutcome { manifest })
}
