//! `--push` and `--output type=registry`: the built image to registries.

use std::path::Path;

use anyhow::{bail, Context, Result};
use skiff_builder::options::registry_output;
use skiff_builder::registry::{self};
use skiff_specs::registry::{ClientOptions, Reference};
use skiff_specs::{Descriptor, Store};

use crate::cli::Cli;

/// Where the command line asks the image to be pushed, checked before the build starts.
pub fn targets(cli: &Cli) -> Result<Vec<Reference>> {
    let mut names: Vec<String> = Vec::new();
    let mut push_tags = cli.build.push;
    for spec in &cli.build.outputs {
        match registry_output(spec).transpose()? {
            Some(Some(name)) => names.push(name),
            Some(None) => push_tags = true,
            None => {}
        }
    }
    if push_tags {
        if cli.build.tags.is_empty() {
            bail!("--push and --output type=registry need a name: -t HOST[:PORT]/REPO[:TAG]");
        }
        names.extend(cli.build.tags.iter().cloned());
    }
    names
        .iter()
        .map(|n| Ok(registry::reference("--push", n)?))
        .collect()
}

/// Pushes the built image `manifest` to each target.
pub fn push_all(
    options: &ClientOptions,
    store: &Path,
    manifest: &Descriptor,
    targets: &[Reference],
) -> Result<()> {
    if targets.is_empty() {
        return Ok(());
    }
    let store = Store::open(store)?;
    for target in targets {
        let pushed = registry::push(options, &store, &manifest.digest.to_string(), target)
            .with_context(|| format!("pushing to {target}"))?;
        eprintln!(
            "pushed {target}: {} blobs uploaded, {} mounted, {} already there",
            pushed.uploaded, pushed.mounted, pushed.skipped
        );
    }
    Ok(())
}
