//! The flags of a build, shared by `skiff-build` and `skiffctl build` (the
//! same names, the same meaning), and what they become: [`BuildOptions`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use skiff_specs::registry::ClientOptions;

use crate::compress::LayerCompression;
use crate::error::{BuildError, Result};
use crate::options::{
    check_platform, parse_build_args, parse_labels, parse_secrets, registry_output, BuildOptions,
    NamedContext, NetworkMode, Output, ProgressMode, ScratchMemory,
};

/// What to build and how (everything but the store, which each program
/// chooses).
#[derive(Debug, Clone, Args)]
pub struct BuildFlags {
    /// The build context: the directory COPY and ADD read from.
    #[arg(required = true)]
    pub context: Option<PathBuf>,

    /// Name the image in the store (repeatable; `name` means `name:latest`).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,

    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Set a build-time variable (repeatable); a bare KEY takes its value from the
    /// environment.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,

    /// Build this stage (and what it needs) instead of the last one.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Run every step instead of reusing cached results (the results are still cached).
    #[arg(long)]
    pub no_cache: bool,

    /// Progress output: plain prints every step and all RUN output (`#N SECONDS line`); tty
    /// (the default on a terminal) prints every step and redraws the last lines of each
    /// running RUN in place, printing a RUN's output only when it fails.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Also write the result: type=oci,dest=FILE (OCI archive), type=docker,dest=FILE
    /// (`docker load` archive), type=local,dest=DIR (the root filesystem) or
    /// type=registry[,name=REGISTRY/REPO:TAG] (push it, to NAME or else to the -t names).
    /// Repeatable.
    #[arg(short = 'o', long = "output", value_name = "type=TYPE,dest=PATH")]
    pub outputs: Vec<String>,

    /// Make NAME (as used by FROM and COPY --from) an image from
    /// oci-layout://PATH[:TAG] or docker-archive://FILE. Repeatable.
    #[arg(long = "build-context", value_name = "NAME=SOURCE")]
    pub build_contexts: Vec<String>,

    /// The OCI runtime for RUN steps [default: skiff next to skiff-build, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,

    /// Set a label on the image, over the Dockerfile's LABELs (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// A secret for `RUN --mount=type=secret,id=ID` (repeatable); it never enters a layer.
    #[arg(long = "secret", value_name = "id=ID,src=PATH")]
    pub secrets: Vec<String>,

    /// The target platform; only the host's can be built (no emulation).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Compression of new layers in the store and in OCI outputs. zstd is much faster;
    /// gzip is for tools that cannot read zstd layers. Docker archives (--output
    /// type=docker) always carry gzip layers, recompressed as needed.
    #[arg(long, value_enum, default_value_t = CompressionArg::Zstd)]
    pub compression: CompressionArg,

    /// Compression level: zstd -7 (fastest) to 22 (smallest), default 3 (0 also means
    /// 3); gzip 0 (stored) to 9, default 6.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub compression_level: Option<i32>,

    /// Scratch space (step snapshots, unpacked layers) in memory, on a tmpfs: `auto` (half
    /// the memory available when the build starts, if that is at least 1 GiB), a size
    /// (e.g. 2G), or 0 for the disk. When the tmpfs fills up the build runs again on
    /// disk, reusing the steps it finished.
    #[arg(long, value_name = "auto|SIZE|0", default_value = "auto")]
    pub scratch_memory: String,

    /// Network for RUN steps: none (an empty namespace) or host. `default` means none.
    #[arg(long, value_enum, default_value_t = NetworkArg::Default)]
    pub network: NetworkArg,

    /// Push the image to its registry under each -t name (HOST[:PORT]/REPO:TAG) after the
    /// build; the same as --output type=registry.
    #[arg(long)]
    pub push: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach registries (pulls of FROM images the store lacks, pushes, login).
/// Credentials come from docker's config file ($DOCKER_CONFIG/config.json, else
/// ~/.docker/config.json: `auths` entries and credential helpers), as `skiff-build login`
/// writes them.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP, not HTTPS, to this registry (HOST[:PORT] as in image names;
    /// repeatable). For registries on loopback or a trusted network only.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

impl RegistryArgs {
    /// The registry client's settings.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            insecure: self.insecure.clone(),
            ..ClientOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Tty,
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Zstd,
    Gzip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    Default,
    None,
    Host,
}

/// `skiff` beside the running program, else the one on PATH.
pub fn default_runtime() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("skiff")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("skiff"))
}

impl BuildFlags {
    /// The build these flags ask for, into the store at `store`.
    pub fn to_options(&self, store: PathBuf) -> Result<BuildOptions> {
        let context = self.context.clone().ok_or_else(|| BuildError::Option {
            option: "CONTEXT",
            reason: "the build context is missing".to_owned(),
        })?;
        let dockerfile = self
            .file
            .clone()
            .unwrap_or_else(|| context.join("Dockerfile"));
        let outputs = self
            .outputs
            .iter()
            .filter(|o| registry_output(o).is_none())
            .map(|o| Output::parse(o))
            .collect::<Result<Vec<_>>>()?;
        let contexts = self
            .build_contexts
            .iter()
            .map(|c| NamedContext::parse(c))
            .collect::<Result<Vec<_>>>()?;
        let progress = match self.progress {
            ProgressArg::Plain => ProgressMode::Plain,
            ProgressArg::Tty => ProgressMode::Tty,
            ProgressArg::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressArg::Auto => ProgressMode::Plain,
        };
        if let Some(p) = &self.platform {
            check_platform(p)?;
        }
        let compression = LayerCompression::parse(
            match self.compression {
                CompressionArg::Zstd => "zstd",
                CompressionArg::Gzip => "gzip",
            },
            self.compression_level,
        )?;
        if !context.is_dir() {
            return Err(BuildError::Option {
                option: "CONTEXT",
                reason: format!("build context {}: not a directory", context.display()),
            });
        }
        Ok(BuildOptions {
            context,
            dockerfile,
            tags: self.tags.clone(),
            build_args: parse_build_args(&self.build_args)?,
            target: self.target.clone(),
            no_cache: self.no_cache,
            progress,
            outputs,
            contexts,
            runtime: self.runtime.clone().unwrap_or_else(default_runtime),
            store,
            labels: parse_labels(&self.labels)?,
            secrets: parse_secrets(&self.secrets)?,
            network: match self.network {
                NetworkArg::Host => NetworkMode::Host,
                NetworkArg::Default | NetworkArg::None => NetworkMode::None,
            },
            compression,
            scratch: ScratchMemory::parse(&self.scratch_memory)?,
            registry: self.registry.client_options(),
        })
    }
}
