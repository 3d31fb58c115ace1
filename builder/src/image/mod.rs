//! `skiff-build image ...`: docker-style commands on the image store, and pulls and pushes.

mod history;
mod inspect;
mod list;
mod load;
mod prune;
mod pull;
mod push;
mod remove;
mod save;
mod tag;

use anyhow::{Context, Result};
use skiff_specs::registry::ClientOptions;
use skiff_specs::Store;

use crate::cli::{ImageCommand, RegistryArgs, StoreArgs};

/// Runs an image subcommand other than `unpack`.
pub fn run(command: ImageCommand) -> Result<()> {
    match command {
        ImageCommand::Unpack(_) => unreachable_unpack(),
        ImageCommand::List(args) => list::run(&open(&args)?),
        ImageCommand::Tag(args) => tag::run(&open(&args.store)?, &args.source, &args.target),
        ImageCommand::Remove(args) => remove::run(
            &open(&args.store)?,
            &args.images,
            &args.snapshots.root(&args.store.store),
        ),
        ImageCommand::Inspect(args) => inspect::run(&open(&args.store)?, &args.image),
        ImageCommand::History(args) => history::run(&open(&args.store)?, &args.image),
        ImageCommand::Save(args) => save::run(&open(&args.store)?, &args),
        ImageCommand::Load(args) => load::run(&open(&args.store)?, &args.input),
        ImageCommand::Pull(args) => pull::run(
            &client_options(&args.registry),
            &open(&args.store)?,
            &args.image,
        ),
        ImageCommand::Push(args) => push::run(
            &client_options(&args.registry),
            &open(&args.store)?,
            &args.image,
            args.target.as_deref(),
        ),
        ImageCommand::Prune(args) => {
            prune::run(&open(&args.store)?, &args.snapshots.root(&args.store.store))
        }
    }
}

fn unreachable_unpack() -> Result<()> {
    anyhow::bail!("image unpack is run by main")
}

/// The store the arguments name.
pub fn open(args: &StoreArgs) -> Result<Store> {
    Store::open(&args.store).with_context(|| format!("opening the store {}", args.store.display()))
}

/// The registry settings the command line gives.
pub fn client_options(args: &RegistryArgs) -> ClientOptions {
    args.client_options()
}

/// `bytes` for people: 1.2MB, as docker shows sizes (powers of 1000).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_088_000), "1.088MB");
        assert_eq!(human_size(2_000_000_000), "2GB");
    }
}
