//! skiff-build's command line, modelled on `docker build`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
pub use skiff_builder::flags::{BuildFlags, RegistryArgs};

/// Build an OCI image from a Dockerfile.
///
/// The image lands in skiff's local image store under its -t names; --output also writes it
/// (or its root filesystem) elsewhere. RUN steps run in containers through an OCI runtime
/// (skiff by default; runc works too).
///
/// Steps that touch files are cached by a key of everything they read (the parent step, the
/// instruction, build args, the content and metadata of copied files), so an unchanged step
/// is reused (`CACHED`) and a changed input is never missed. `skiff-build prune` drops the
/// cache.
#[derive(Debug, Parser)]
#[command(
    name = "skiff-build",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub build: BuildFlags,

    /// The image store (an OCI image layout).
    #[arg(long, value_name = "DIR", default_value = skiff_specs::store::DEFAULT_STORE_ROOT)]
    pub store: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Remove the build cache (cached step results, context stat caches, RUN cache mounts),
    /// then the layer blobs and layer snapshots no image in the store references, and
    /// report what was freed. The blob sweep waits for running builds to finish.
    Prune(PruneArgs),
    /// Work with images in the store, and pull or push them.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Log in to a registry: check the credentials against it and save them in docker's
    /// config file (`auths`), where pulls and pushes find them.
    Login(LoginArgs),
    /// Remove a registry's saved credentials from docker's config file.
    Logout(LogoutArgs),
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT] as in image names.
    #[arg(default_value = skiff_specs::registry::DOCKER_HUB)]
    pub registry: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] as in image names.
    #[arg(default_value = skiff_specs::registry::DOCKER_HUB)]
    pub registry: String,

    /// The user name.
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: String,

    /// The password (prefer --password-stdin: command lines are visible to others).
    #[arg(
        short = 'p',
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    pub password: Option<String>,

    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,

    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Make an OCI runtime bundle from an image: BUNDLE/rootfs (a copy of the image's
    /// layers applied in order, unpacked once into the snapshot area and reused from
    /// there) and BUNDLE/config.json (the image's entrypoint, cmd, env, user and workdir,
    /// with Docker's default security profile: its capabilities, masked /proc paths and a
    /// seccomp filter). Run it with `skiff run --bundle BUNDLE ID`.
    Unpack(UnpackArgs),
    /// List the images in the store: name, manifest digest, creation time and size.
    #[command(visible_alias = "ls")]
    List(StoreArgs),
    /// Give an image of the store another name.
    Tag(TagArgs),
    /// Remove names (or, given a digest, every name of that image) from the store; the
    /// content goes at the next prune, the layer snapshots no image needs any more at once.
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
    /// Show an image: its manifest descriptor, manifest and config, as JSON.
    Inspect(ImageArgs),
    /// Show the steps that made an image, newest first, like `docker history`.
    History(ImageArgs),
    /// Write images to an archive: OCI (the default) or `docker load` format.
    Save(SaveArgs),
    /// Add the images of an OCI or docker archive to the store.
    Load(LoadArgs),
    /// Pull an image from its registry into the store (the host's platform of a
    /// multi-platform image), named by its full reference, e.g.
    /// docker.io/library/busybox:latest.
    Pull(PullArgs),
    /// Push an image of the store to a registry. The store also names it TARGET afterwards,
    /// so later pushes to that registry can mount its blobs instead of uploading them.
    Push(PushArgs),
    /// Remove the images that have no name, then every blob and layer snapshot no image
    /// uses.
    Prune(ImagePruneArgs),
}

/// The snapshot area: each layer unpacked once, shared by `image unpack` and skiff's
/// containers.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// The layer snapshot area [default: `snapshots` beside the store, so
    /// /var/lib/skiff/snapshots for the default store]. Stores that share a parent
    /// directory share it; pass --snapshots to keep them apart.
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
}

impl SnapshotArgs {
    /// The area for the store at `store`.
    pub fn root(&self, store: &std::path::Path) -> PathBuf {
        self.snapshots
            .clone()
            .unwrap_or_else(|| skiff_specs::snapshots::beside_store(store))
    }
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The image store.
    #[arg(long, value_name = "DIR", default_value = skiff_specs::store::DEFAULT_STORE_ROOT)]
    pub store: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The image: NAME[:TAG] or a manifest digest.
    pub image: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: NAME[:TAG] or a manifest digest.
    pub source: String,
    /// The new name, NAME[:TAG].
    pub target: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Names or digests.
    #[arg(required = true)]
    pub images: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The images: names or digests.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The archive to write.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// oci, or docker for `docker load` (layers as they are in the store).
    #[arg(long, value_enum, default_value_t = ArchiveFormat::Oci)]
    pub format: ArchiveFormat,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchiveFormat {
    Oci,
    Docker,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive (OCI or docker, optionally gzipped).
    #[arg(short = 'i', long, value_name = "FILE")]
    pub input: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// [REGISTRY/]REPOSITORY[:TAG][@DIGEST]; a short name is Docker Hub's.
    pub image: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image in the store: NAME[:TAG] or a digest.
    pub image: String,
    /// Where to push it, REGISTRY/REPOSITORY[:TAG] [default: the image's name].
    pub target: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The image: NAME[:TAG] (`name` means `name:latest`) or a manifest digest.
    pub image: String,

    /// The bundle directory to create (it must not exist, or be empty).
    pub bundle: PathBuf,

    /// The command and its arguments, replacing the image's CMD.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    /// The image store.
    #[arg(long, value_name = "DIR", default_value = skiff_specs::store::DEFAULT_STORE_ROOT)]
    pub store: PathBuf,

    #[command(flatten)]
    pub snapshots: SnapshotArgs,

    /// Set an environment variable over the image's (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Run as this user (NAME|UID[:GROUP|GID]) instead of the image's USER.
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// The working directory instead of the image's WORKDIR.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Replace the image's ENTRYPOINT (an empty string removes it).
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,

    /// The container's hostname.
    #[arg(long, default_value = "skiff")]
    pub hostname: String,

    /// Share the host's network namespace instead of a new, empty one.
    #[arg(long)]
    pub host_network: bool,

    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,

    /// Give the process a terminal (for `skiff run` from a terminal).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Leave out the default seccomp filter.
    #[arg(long)]
    pub no_seccomp: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The image store whose build cache to prune.
    #[arg(long, value_name = "DIR", default_value = skiff_specs::store::DEFAULT_STORE_ROOT)]
    pub store: PathBuf,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
}
