//! skiff-build: Dockerfile → layered OCI image in skiff's store.

mod cli;
mod image;
mod login;
mod push;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Cli, Command, ImageCommand, PruneArgs, UnpackArgs};

fn prune(args: &PruneArgs) -> Result<()> {
    let snapshots = args.snapshots.root(&args.store);
    let r = skiff_builder::prune::prune(&args.store, &snapshots).context("prune failed")?;
    println!(
        "removed {} cache entries, {} context stat caches, {} cache mounts ({} bytes); \
         {} unreferenced blobs ({} bytes); {} partial downloads ({} bytes); \
         {} layer snapshots ({} bytes)",
        r.entries,
        r.stat_caches,
        r.cache_mounts,
        r.cache_bytes,
        r.blobs,
        r.blob_bytes,
        r.partials,
        r.partial_bytes,
        r.snapshots,
        r.snapshot_bytes
    );
    Ok(())
}

fn unpack(args: &UnpackArgs) -> Result<()> {
    use skiff_specs::runtime_spec::{Network, SpecOptions};
    let overrides = skiff_specs::Overrides {
        entrypoint: args.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        }),
        cmd: (!args.command.is_empty()).then(|| args.command.clone()),
        env: args.env.clone(),
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
    };
    let runtime = skiff_builder::flags::default_runtime();
    let snapshots = args.snapshots.root(&args.store);
    let request = skiff_builder::bundle::BundleRequest {
        store: &args.store,
        snapshots: &snapshots,
        reference: &args.image,
        dir: &args.bundle,
        overrides,
        spec: SpecOptions {
            hostname: &args.hostname,
            network: if args.host_network {
                Network::Host
            } else {
                Network::Isolated
            },
            readonly_rootfs: args.read_only,
            terminal: args.tty,
            seccomp: !args.no_seccomp,
        },
        runtime: &runtime,
    };
    let config = skiff_builder::bundle::unpack_bundle(&request)
        .with_context(|| format!("unpacking {} into {}", args.image, args.bundle.display()))?;
    eprintln!("bundle ready: {}", config.display());
    Ok(())
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let subcommand = match cli.command.take() {
        Some(Command::Prune(args)) => Some(prune(&args)),
        Some(Command::Image(ImageCommand::Unpack(args))) => Some(unpack(&args)),
        Some(Command::Image(command)) => Some(image::run(command)),
        Some(Command::Login(args)) => Some(login::run(&args)),
        Some(Command::Logout(args)) => Some(login::logout(&args)),
        None => None,
    };
    if let Some(result) = subcommand {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("skiff-build: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let pushes = push::targets(&cli);
    let result = pushes.and_then(|pushes| {
        let store = cli.store.clone();
        let opts = cli.build.to_options(store.clone())?;
        let outcome = skiff_builder::build(&opts).context("build failed")?;
        push::push_all(&opts.registry, &store, &outcome.manifest, &pushes)?;
        Ok(outcome)
    });
    match result {
        Ok(outcome) => {
            println!("{}", outcome.manifest.digest);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skiff-build: {e:#}");
            ExitCode::FAILURE
        }
    }
}
