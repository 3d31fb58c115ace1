//! `build`, `pull`, `push` and `config`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use skiff_builder::options::{BuildOptions, NetworkMode, ProgressMode, ScratchMemory};

use super::ComposeArgs;
use crate::compose::{Project, Service};
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Builds `svc`'s image (tagged as the project names it) with skiff-build.
pub fn build_service(
    engine: &Engine,
    project: &Project,
    svc: &Service,
    no_cache: bool,
    extra_args: &[String],
) -> Result<()> {
    let Some(b) = &svc.build else {
        return Ok(());
    };
    if b.context.contains("://") || b.context.starts_with("git@") {
        bail!(
            "services.{}.build.context: remote contexts are not supported ({})",
            svc.name,
            b.context
        );
    }
    let context = PathBuf::from(&b.context);
    // An inline Dockerfile goes to a file of its own beside nothing else.
    let inline_dir;
    let dockerfile = match (&b.dockerfile_inline, &b.dockerfile) {
        (Some(text), _) => {
            inline_dir = tempfile::tempdir()?;
            let p = inline_dir.path().join("Dockerfile");
            std::fs::write(&p, text)?;
            p
        }
        (None, Some(f)) => context.join(f),
        (None, None) => context.join("Dockerfile"),
    };
    let mut build_args: BTreeMap<String, String> = b
        .args
        .iter()
        .filter_map(|(k, v)| {
            v.clone()
                .or_else(|| std::env::var(k).ok())
                .map(|v| (k.clone(), v))
        })
        .collect();
    build_args.extend(skiff_builder::options::parse_build_args(extra_args)?);
    let mut tags = vec![project.image_name(svc)];
    tags.extend(b.tags.clone());
    let secrets: BTreeMap<String, PathBuf> = b
        .secrets
        .iter()
        .filter_map(|s| {
            let file = project.secrets.get(&s.source)?.file.clone()?;
            Some((s.target.clone(), file))
        })
        .collect();
    let opts = BuildOptions {
        context,
        dockerfile,
        tags,
        build_args,
        target: b.target.clone(),
        no_cache,
        progress: if std::io::stderr().is_terminal() {
            ProgressMode::Tty
        } else {
            ProgressMode::Plain
        },
        outputs: Vec::new(),
        contexts: Vec::new(),
        runtime: skiff_builder::flags::default_runtime(),
        store: engine.layout.store(),
        labels: b.labels.clone(),
        secrets,
        network: NetworkMode::None,
        compression: Default::default(),
        scratch: ScratchMemory::parse("auto")?,
        registry: engine.registry.clone(),
    };
    eprintln!(" Service {}  Building", svc.name);
    skiff_builder::build(&opts).with_context(|| format!("building service {}", svc.name))?;
    eprintln!(" Service {}  Built", svc.name);
    Ok(())
}

pub fn build(engine: &Engine, a: &ComposeArgs, b: &BuildArgs) -> Result<i32> {
    let project = super::project(a, &b.services)?;
    for name in super::selected(&project, &b.services)? {
        if let Some(svc) = project.service(&name) {
            build_service(engine, &project, svc, b.no_cache, &b.build_arg)?;
        }
    }
    Ok(0)
}

pub fn pull(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs) -> Result<i32> {
    let project = super::project(a, &s.services)?;
    let store = engine.store()?;
    for name in super::selected(&project, &s.services)? {
        let Some(svc) = project.service(&name) else {
            continue;
        };
        let Some(image) = &svc.image else { continue };
        if svc.build.is_some() && svc.pull_policy.as_deref() == Some("build") {
            continue;
        }
        eprintln!(" {name} Pulling");
        crate::image::pull(&store, image, &engine.registry)?;
        eprintln!(" {name} Pulled");
    }
    Ok(0)
}

pub fn push(engine: &Engine, a: &ComposeArgs, s: &ServicesArgs) -> Result<i32> {
    let project = super::project(a, &s.services)?;
    let store = engine.store()?;
    for name in super::selected(&project, &s.services)? {
        let Some(svc) = project.service(&name) else {
            continue;
        };
        if svc.build.is_none() {
            continue;
        }
        let image = project.image_name(svc);
        let target = skiff_builder::registry::reference("push", &image)?;
        skiff_builder::registry::push(&engine.registry, &store, &image, &target)
            .with_context(|| format!("pushing {image}"))?;
    }
    Ok(0)
}

pub fn config(a: &ComposeArgs, c: &ConfigArgs) -> Result<i32> {
    let project = super::project(a, &[])?;
    if c.quiet {
        return Ok(0);
    }
    if c.services {
        for s in &project.services {
            println!("{}", s.name);
        }
        return Ok(0);
    }
    if c.volumes {
        for v in project.volumes.keys() {
            println!("{v}");
        }
        return Ok(0);
    }
    print!("{}", project.to_yaml());
    Ok(0)
}
