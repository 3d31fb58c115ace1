//! skiff-build: Dockerfile → layered OCI image in skiff's store.

mod cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use skiff_builder::options::{
    check_platform, parse_build_args, parse_labels, parse_secrets, BuildOptions, NamedContext,
    NetworkMode, Output, ProgressMode,
};

use cli::{Cli, NetworkArg, ProgressArg};

/// `skiff` beside our own binary, else the one on PATH.
fn default_runtime() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("skiff")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("skiff"))
}

fn options(cli: Cli) -> Result<BuildOptions> {
    let dockerfile = cli
        .file
        .clone()
        .unwrap_or_else(|| cli.context.join("Dockerfile"));
    let outputs = cli
        .outputs
        .iter()
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
    if !cli.context.is_dir() {
        anyhow::bail!("build context {}: not a directory", cli.context.display());
    }
    Ok(BuildOptions {
        context: cli.context,
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
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = options(cli).and_then(|opts| skiff_builder::build(&opts).context("build failed"));
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
