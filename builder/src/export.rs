//! The built stage as an image: config (with history, rootfs.diff_ids and `created`),
//! manifest, store names, and the --output files.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use skiff_specs::archive::{export_docker_images, export_oci_archive};
use skiff_specs::media_type::{OCI_CONFIG, OCI_MANIFEST};
use skiff_specs::{Descriptor, Digest, Image, ImageConfig, ImageManifest, Platform, RootFs, Store};

use crate::compress::gzip_layer;
use crate::error::{BuildError, Result};
use crate::execute::{CopyJob, Snapshot, StageState};
use crate::options::Output;

/// The image config of a finished stage.
pub fn image_config(state: &StageState, created: &str) -> ImageConfig {
    ImageConfig {
        created: Some(state.created.as_deref().unwrap_or(created).to_owned()),
        author: state.author.clone(),
        architecture: state.architecture.clone(),
        os: state.os.clone(),
        variant: state.variant.clone(),
        config: Some(state.config.clone()),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: state.layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: Some(state.history.clone()),
        ..ImageConfig::default()
    }
}

/// `name` as the store names it: a name without tag or digest gets `:latest`.
pub fn normalize_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// Writes config and manifest to the store and names the image `tags` (kept unnamed in the
/// index when there are none). Returns the manifest's descriptor.
pub fn write_image(
    store: &Store,
    state: &StageState,
    created: &str,
    tags: &[String],
) -> Result<Descriptor> {
    let config = image_config(state, created);
    let config_desc = put_json(store, OCI_CONFIG, serde_json::to_vec(&config))?;
    let manifest = ImageManifest::new_oci(
        config_desc,
        state.layers.iter().map(|l| l.blob.clone()).collect(),
    );
    let manifest_desc = put_json(store, OCI_MANIFEST, serde_json::to_vec(&manifest))?;
    if tags.is_empty() {
        store.add_unnamed(&manifest_desc)?;
    }
    // A rebuild that made the same image leaves the index alone.
    let named: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|i| i.descriptor.digest == manifest_desc.digest)
        .filter_map(|i| i.name)
        .collect();
    for tag in tags {
        let name = normalize_tag(tag);
        if !named.contains(&name) {
            store.tag(&name, &manifest_desc)?;
        }
    }
    Ok(manifest_desc)
}

/// Stores serialized JSON as `Store::put_json` does, without writing (and syncing) a
/// blob the store already has: a cached rebuild makes the same config and manifest.
fn put_json(
    store: &Store,
    media_type: &str,
    json: serde_json::Result<Vec<u8>>,
) -> Result<Descriptor> {
    let bytes = json.map_err(|e| BuildError::step("exporting", e.to_string()))?;
    let digest = Digest::sha256_of(&bytes);
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let (digest, size) = store.put_blob(&bytes[..], Some(&digest), Some(size))?;
    Ok(Descriptor::new(media_type, digest, size))
}

/// Writes one --output. `reference` names the image in the store.
pub fn write_output(
    store: &Store,
    reference: &str,
    state: &StageState,
    output: &Output,
    work: &Path,
) -> Result<()> {
    match output {
        Output::Oci(dest) => {
            let file = File::create(dest).map_err(BuildError::io(dest))?;
            let w = export_oci_archive(store, &[reference], BufWriter::new(file))?;
            finish(w, dest)
        }
        Output::Docker(dest) => {
            let platform = Platform::host();
            let image = gzip_image(store, &store.resolve(reference)?, &platform)?;
            let name = Digest::parse(reference).is_err().then_some(reference);
            let file = File::create(dest).map_err(BuildError::io(dest))?;
            let w = export_docker_images(store, &[(name, image)], &platform, BufWriter::new(file))?;
            finish(w, dest)
        }
        Output::Local(dest) => {
            fs::create_dir_all(dest).map_err(BuildError::io(dest))?;
            let lowers: Vec<_> = state.layers.iter().map(|l| l.dir.clone()).collect();
            let snap = Snapshot::mount(&work.join("export-local"), &lowers)?;
            CopyJob::whole_tree(&snap.merged, dest).run("--output type=local")
        }
    }
}

/// The image `descriptor` with gzip layers only, for `docker load`: itself when all are
/// gzip already, else a manifest (added to the store's blobs, unnamed) whose other layers
/// are recompressed. The config, and so the image ID docker shows, stays the same.
fn gzip_image(store: &Store, descriptor: &Descriptor, platform: &Platform) -> Result<Descriptor> {
    let image = Image::load(store, descriptor, platform)?;
    let layers = image
        .manifest
        .layers
        .iter()
        .map(|l| gzip_layer(store, l))
        .collect::<Result<Vec<_>>>()?;
    if layers == image.manifest.layers {
        return Ok(image.descriptor);
    }
    let manifest = ImageManifest {
        layers,
        ..image.manifest
    };
    Ok(store.put_json(OCI_MANIFEST, &manifest)?)
}

fn finish(mut w: BufWriter<File>, dest: &Path) -> Result<()> {
    w.flush().map_err(BuildError::io(dest))?;
    let file = w
        .into_inner()
        .map_err(|e| BuildError::io(dest)(e.into_error()))?;
    file.sync_all().map_err(BuildError::io(dest))
}

#[cfg(test)]
mod tests {
    use super::normalize_tag;

    #[test]
    fn tags() {
        assert_eq!(normalize_tag("app"), "app:latest");
        assert_eq!(
            normalize_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalize_tag("app:1"), "app:1");
    }
}
