//! A one-layer busybox OCI image made on the spot, no registry: the rootfs of
//! `make_rootfs` as an uncompressed tar layer, its config and manifest, an OCI
//! layout around them, and that layout as an OCI archive (a tar of the layout
//! directory), which `podman load` and `ctr images import` both read.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::make_rootfs;

/// The name the archive gives its image (index annotation org.opencontainers.image.ref.name).
pub const IMAGE_REF: &str = "localhost/skiff-busybox:latest";
/// A pause-like image for CRI pod sandboxes: the busybox image whose entrypoint
/// sleeps for as long as a signed 32-bit number of seconds allows.
pub const PAUSE_REF: &str = "localhost/skiff-pause:latest";
const PAUSE_ENTRYPOINT: &[&str] = &["sleep", "2147483647"];

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// The busybox archive, built once per test process into a temp dir that is
/// removed when the process exits.
pub fn busybox_archive() -> Result<PathBuf> {
    static CACHE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    cached_archive(&CACHE, IMAGE_REF, &[])
}

/// The pause-like archive (PAUSE_REF), built once per test process like
/// `busybox_archive`.
pub fn pause_archive() -> Result<PathBuf> {
    static CACHE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    cached_archive(&CACHE, PAUSE_REF, PAUSE_ENTRYPOINT)
}

fn cached_archive(
    cache: &OnceLock<Result<PathBuf, String>>,
    reference: &str,
    entrypoint: &[&str],
) -> Result<PathBuf> {
    cache
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("skiff-image-")
                .tempdir()
                .map_err(|e| format!("cannot make a temp dir: {e}"))?
                .keep();
            remove_at_exit(&dir);
            build_archive_with(&dir, reference, entrypoint).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("cannot build the image {reference}: {e}"))
}

/// Builds the busybox image under `work` and returns the path of its OCI archive.
pub fn build_archive(work: &Path, reference: &str) -> Result<PathBuf> {
    build_archive_with(work, reference, &[])
}

/// Like `build_archive`, with an image entrypoint (none when empty).
pub fn build_archive_with(work: &Path, reference: &str, entrypoint: &[&str]) -> Result<PathBuf> {
    let rootfs = work.join("rootfs");
    make_rootfs(&rootfs)?;
    let layout = work.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;

    // The layer: entries named without a leading "./", owned by root, fixed times.
    let layer_tmp = work.join("layer.tar");
    let mut entries: Vec<String> = fs::read_dir(&rootfs)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    entries.sort();
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--mtime=@0",
        ])
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer_tmp)
        .args(&entries))?;
    let layer = add_blob(&blobs, &fs::read(&layer_tmp)?)?;
    fs::remove_file(&layer_tmp)?;

    let mut run_config = json!({
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "WorkingDir": "/"
    });
    if !entrypoint.is_empty() {
        run_config["Entrypoint"] = json!(entrypoint);
        run_config["Cmd"] = json!([]);
    }
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": go_arch(),
        "os": "linux",
        "config": run_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "skiff integration tests"}]
    });
    let config = add_blob(&blobs, &serde_json::to_vec(&config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.descriptor(CONFIG_TYPE),
        "layers": [layer.descriptor(LAYER_TYPE)]
    });
    let manifest = add_blob(&blobs, &serde_json::to_vec(&manifest)?)?;
    let mut desc = manifest.descriptor(MANIFEST_TYPE);
    desc["annotations"] = json!({ "org.opencontainers.image.ref.name": reference });
    let index = json!({ "schemaVersion": 2, "manifests": [desc] });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let archive = work.join("busybox-oci.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"]))?;
    Ok(archive)
}

struct Blob {
    digest: String,
    size: usize,
}

impl Blob {
    fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.size })
    }
}

/// Stores `data` as blobs/sha256/HEX.
fn add_blob(blobs: &Path, data: &[u8]) -> Result<Blob> {
    let tmp = blobs.join("incoming");
    fs::write(&tmp, data)?;
    let hex = sha256_file(&tmp)?;
    fs::rename(&tmp, blobs.join(&hex))?;
    Ok(Blob {
        digest: format!("sha256:{hex}"),
        size: data.len(),
    })
}

/// coreutils' sha256sum, to spare the tests a hashing dependency.
fn sha256_file(path: &Path) -> Result<String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    if hex.len() != 64 {
        bail!("unexpected sha256sum output: {out:?}");
    }
    Ok(hex.to_owned())
}

/// The GOARCH name of this machine, as image configs spell it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes `dir` when the test process exits (statics are never dropped).
fn remove_at_exit(dir: &Path) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn remove_all() {
        if let Ok(dirs) = DIRS.lock() {
            for d in dirs.iter() {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
    if let Ok(mut dirs) = DIRS.lock() {
        if dirs.is_empty() {
            // SAFETY: registers a plain function with no captured state; it only
            // reads a static, which lives until exit.
            unsafe {
                libc::atexit(remove_all);
            }
        }
        dirs.push(dir.to_path_buf());
    }
}
