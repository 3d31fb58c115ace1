//! Test images made on the spot: a one-file layer, its config and manifest.
#![allow(dead_code)]

use std::path::Path;

use skiff_specs::config::{ContainerConfig, History, ImageConfig, RootFs};
use skiff_specs::{media_type, Descriptor, Digest, ImageManifest, Platform, Store};

/// An uncompressed layer tar holding one file `name` with `content`.
pub fn layer_tar(name: &str, content: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, content)?;
    Ok(builder.into_inner()?)
}

/// Puts a one-layer image in `store` and names it `name`; returns the
/// manifest descriptor.
pub fn make_image(store: &Store, name: &str, file_content: &[u8]) -> anyhow::Result<Descriptor> {
    let layer = layer_tar("hello.txt", file_content)?;
    let diff_id = Digest::sha256_of(&layer);
    make_image_with_layer(store, name, &layer, media_type::OCI_LAYER_TAR, diff_id)
}

/// Like [`make_image`] with a given layer blob, media type and diff id.
pub fn make_image_with_layer(
    store: &Store,
    name: &str,
    layer: &[u8],
    layer_media_type: &str,
    diff_id: Digest,
) -> anyhow::Result<Descriptor> {
    let (layer_digest, layer_size) = store.put_blob(layer, None, None)?;
    let host = Platform::host();
    let config = ImageConfig {
        created: Some("1970-01-01T00:00:00Z".into()),
        architecture: host.architecture.clone(),
        os: host.os.clone(),
        variant: host.variant.clone(),
        config: Some(ContainerConfig {
            env: Some(vec!["GREETING=hi".into()]),
            cmd: Some(vec!["/bin/sh".into()]),
            ..ContainerConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: Some(vec![History {
            created_by: Some("test layer".into()),
            ..History::default()
        }]),
        ..ImageConfig::default()
    };
    let config_desc = store.put_json(media_type::OCI_CONFIG, &config)?;
    let manifest = ImageManifest::new_oci(
        config_desc,
        vec![Descriptor::new(layer_media_type, layer_digest, layer_size)],
    );
    let desc = store.put_json(media_type::OCI_MANIFEST, &manifest)?;
    store.tag(name, &desc)?;
    Ok(desc)
}

/// Every blob file in a store, sorted.
pub fn blob_files(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for alg in ["sha256", "sha512"] {
        let dir = root.join("blobs").join(alg);
        if !dir.exists() {
            continue;
        }
        for e in std::fs::read_dir(dir)? {
            out.push(format!("{alg}/{}", e?.file_name().to_string_lossy()));
        }
    }
    out.sort();
    Ok(out)
}

pub fn digest_of(bytes: &[u8]) -> Digest {
    Digest::sha256_of(bytes)
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

pub mod layers;
