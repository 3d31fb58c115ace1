//! Images in and out of the store: `pull`, `push`, `save`, `load`,
//! `login`, `logout`, `build`.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use skiff_specs::archive::{export_docker_archive, import_archive};
use skiff_specs::registry::{self, Credentials};
use skiff_specs::Platform;

use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// NAME[:TAG]: the image in the store, pushed to the registry its name says
    pub image: String,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: String,
    /// Password (prefer --password-stdin)
    #[arg(short = 'p', long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub)
    #[arg(default_value = skiff_specs::registry::DOCKER_HUB)]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(default_value = skiff_specs::registry::DOCKER_HUB)]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub flags: skiff_builder::flags::BuildFlags,
}

pub fn pull(engine: &Engine, a: PullArgs) -> Result<i32> {
    crate::image::pull(&engine.store()?, &a.image, &engine.registry)?;
    println!("{}", a.image);
    Ok(0)
}

pub fn push(engine: &Engine, a: PushArgs) -> Result<i32> {
    let store = engine.store()?;
    let target = skiff_builder::registry::reference("push", &a.image)?;
    skiff_builder::registry::push(&engine.registry, &store, &a.image, &target)
        .with_context(|| format!("pushing {}", a.image))?;
    Ok(0)
}

pub fn save(engine: &Engine, a: SaveArgs) -> Result<i32> {
    let store = engine.store()?;
    let refs: Vec<&str> = a.images.iter().map(String::as_str).collect();
    match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let temp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let mut out = export_docker_archive(
                &store,
                &refs,
                &Platform::host(),
                BufWriter::new(temp.reopen()?),
            )?;
            out.flush()?;
            temp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let mut out = export_docker_archive(
                &store,
                &refs,
                &Platform::host(),
                BufWriter::new(std::io::stdout().lock()),
            )?;
            out.flush()?;
        }
    }
    Ok(0)
}

pub fn load(engine: &Engine, a: LoadArgs) -> Result<i32> {
    let store = engine.store()?;
    // The archive is read from a file; stdin goes to a temp file first.
    let (_tmp, input) = match &a.input {
        Some(p) => (None, p.clone()),
        None => {
            let mut t = tempfile::NamedTempFile::new()?;
            std::io::copy(&mut std::io::stdin().lock(), &mut t)?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let imported = import_archive(&store, &input, None, None)
        .with_context(|| format!("loading {}", input.display()))?;
    if !a.quiet {
        for image in imported {
            match image.name {
                Some(name) => println!("Loaded image: {name}"),
                None => println!("Loaded image ID: {}", image.descriptor.digest),
            }
        }
    }
    Ok(0)
}

pub fn login(engine: &Engine, a: LoginArgs) -> Result<i32> {
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => bail!("give the password with --password-stdin (or -p)"),
    };
    let creds = Credentials {
        username: a.username.clone(),
        password,
    };
    registry::login(
        &registry::Client::new(engine.registry.clone()),
        &a.server,
        &creds,
    )
    .with_context(|| format!("logging in to {}", a.server))?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(engine: &Engine, a: LogoutArgs) -> Result<i32> {
    match registry::logout(&registry::Client::new(engine.registry.clone()), &a.server)? {
        Some(_) => println!("Removing login credentials for {}", a.server),
        None => println!("Not logged in to {}", a.server),
    }
    Ok(0)
}

pub fn build(engine: &Engine, a: BuildArgs) -> Result<i32> {
    let mut flags = a.flags;
    flags
        .registry
        .insecure
        .extend(engine.registry.insecure.iter().cloned());
    let opts = flags.to_options(engine.layout.store())?;
    let outcome = skiff_builder::build(&opts)?;
    println!("{}", outcome.manifest.digest);
    Ok(0)
}
