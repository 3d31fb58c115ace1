//! skiff-build: Dockerfile → layered OCI image in skiff's store.

mod cli;
mod image;
mod login;
mod push;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use skiff_builder::compress::LayerCompression;
use skiff_builder::options::{
    check_platform, parse_build_args, parse_labels, parse_secrets, BuildOptions, NamedContext,
    NetworkMode, Output, ProgressMode, ScratchMemory,
};

use cli::{
    Cli, Command, CompressionArg, ImageCommand, NetworkArg, ProgressArg, PruneArgs, UnpackArgs,
};
use skiff_builder::options::registry_output;

/// `skiff` beside our own binary, else the one on PATH.
fn default_runtime() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("skiff")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("skiff"))
}

fn options(cli: Cli) -> Result<BuildOptions> {
    let context = cli
        .context
        .clone()
        .context("the build context is missing")?;
    let dockerfile = cli
        .file
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile"));
    let outputs = cli
        .outputs
        .iter()
        .filter(|o| registry_output(o).is_none())
        .map(|o| Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let contexts = cli
        .build_contexts
        .iter()
        .map(|c| NamedContext::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let progress = match cli.progress {
        ProgressArg::Plain => ProgressMode::Plain,
        ProgressArg::Tty => ProgressMode::Tty,
        ProgressArg::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
        ProgressArg::Auto => ProgressMode::Plain,
    };
    if let Some(p) = &cli.platform {
        check_platform(p)?;
    }
    let compression = LayerCompression::parse(
        match cli.compression {
            CompressionArg::Zstd => "zstd",
            CompressionArg::Gzip => "gzip",
        },
        cli.compression_level,
    )?;
    if !context.is_dir() {
        anyhow::bail!("build context {}: not a directory", context.display());
    }
    Ok(BuildOptions {
        context,
        dockerfile,
        tags: cli.tags,
        build_args: parse_build_args(&cli.build_args)?,
        target: cli.target,
        no_cache: cli.no_cache,
        progress,
        outputs,
        contexts,
        runtime: cli.runtime.unwrap_or_else(default_runtime),
        store: cli.store,
        labels: parse_labels(&cli.labels)?,
        secrets: parse_secrets(&cli.secrets)?,
        network: match cli.network {
            NetworkArg::Host => NetworkMode::Host,
            NetworkArg::Default | NetworkArg::None => NetworkMode::None,
        },
        compression,
        scratch: ScratchMemory::parse(&cli.scratch_memory)?,
        registry: image::client_options(&cli.registry),
    })
}

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
    let runtime = default_runtime();
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
        let opts = options(cli)?;
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
