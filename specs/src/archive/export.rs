//! Writing images from the store as OCI and Docker archives. Tar headers are
//! fixed (mtime 0, root-owned, 0644/0755) and entries come in a fixed order,
//! so the same images give the same archive bytes.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use serde::Serialize;

use super::{tag_of, ArchiveError};
use crate::descriptor::{Descriptor, Platform};
use crate::digest::Digest;
use crate::image::Image;
use crate::index::ImageIndex;
use crate::media_type::{self, ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::store::Store;

/// One image of `docker save`'s manifest.json.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(out: W) -> Self {
        ArchiveWriter {
            tar: tar::Builder::new(out),
            written: HashSet::new(),
        }
    }

    fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        header
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        if self.written.insert(name.to_owned()) {
            let mut header = Self::header(0, 0o755, tar::EntryType::Directory);
            self.tar
                .append_data(&mut header, name, std::io::empty())
                .map_err(|source| write_error(name, source))?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, size: u64, content: impl Read) -> Result<(), ArchiveError> {
        if self.written.insert(name.to_owned()) {
            let mut header = Self::header(size, 0o644, tar::EntryType::Regular);
            self.tar
                .append_data(&mut header, name, content)
                .map_err(|source| write_error(name, source))?;
        }
        Ok(())
    }

    fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.file(name, bytes.len() as u64, bytes)
    }

    /// Copies a blob from the store, verifying it on the way.
    fn blob(&mut self, store: &Store, d: &Descriptor) -> Result<(), ArchiveError> {
        let name = d.digest.layout_path();
        if self.written.contains(&name) {
            return Ok(());
        }
        self.dir("blobs")?;
        self.dir(&format!("blobs/{}", d.digest.algorithm()))?;
        let reader = store.open_blob_verified(d)?;
        self.file(&name, d.size, reader)
    }

    fn finish(self) -> Result<W, ArchiveError> {
        self.tar
            .into_inner()
            .map_err(|source| write_error("end of archive", source))
    }
}

fn write_error(entry: &str, source: std::io::Error) -> ArchiveError {
    ArchiveError::Write {
        entry: entry.to_owned(),
        source,
    }
}

/// The index entry of an exported image: the full name in containerd's
/// annotation and the tag (or the name, when it has no tag) as the OCI
/// ref name, as Docker and BuildKit write them.
fn named_entry(descriptor: &Descriptor, name: Option<&str>) -> Descriptor {
    let mut entry = descriptor.clone();
    entry.annotations = None;
    if let Some(name) = name {
        entry.set_annotation(ANNOTATION_CONTAINERD_IMAGE_NAME, name);
        entry.set_annotation(ANNOTATION_REF_NAME, tag_of(name).unwrap_or(name));
    }
    entry
}

/// A reference that is a name (not a digest), for naming it in the archive.
fn as_name(reference: &str) -> Option<&str> {
    Digest::parse(reference).is_err().then_some(reference)
}

fn layout_header<W: Write>(
    w: &mut ArchiveWriter<W>,
    index: &ImageIndex,
) -> Result<(), ArchiveError> {
    let layout = format!(
        "{{\"imageLayoutVersion\":\"{}\"}}",
        media_type::OCI_LAYOUT_VERSION
    );
    w.bytes("oci-layout", layout.as_bytes())?;
    let index_json = index.to_json().map_err(|source| ArchiveError::Json {
        location: "index.json".to_owned(),
        what: "image index",
        source,
    })?;
    w.bytes("index.json", &index_json)
}

/// Writes the images `references` (names or digests in the store) as an OCI
/// archive: `oci-layout`, `index.json` naming each image, and every blob
/// they reach (all platforms of a multi-platform image).
pub fn export_oci_archive<W: Write>(
    store: &Store,
    references: &[&str],
    out: W,
) -> Result<W, ArchiveError> {
    let mut index = ImageIndex::default();
    let mut blobs = Vec::new();
    for reference in references {
        let descriptor = store.resolve(reference)?;
        index
            .manifests
            .push(named_entry(&descriptor, as_name(reference)));
        blobs.extend(store.reachable(&descriptor)?);
    }
    let mut w = ArchiveWriter::new(out);
    layout_header(&mut w, &index)?;
    for blob in &blobs {
        w.blob(store, blob)?;
    }
    w.finish()
}

/// Writes the images `references` for `platform` in `docker save` format:
/// manifest.json, repositories and the config and layer blobs, plus the OCI
/// layout files Docker 25 adds, so both `docker load`/`podman load` and OCI
/// tools read it. Layers are copied as stored (gzip, zstd or plain tar).
pub fn export_docker_archive<W: Write>(
    store: &Store,
    references: &[&str],
    platform: &Platform,
    out: W,
) -> Result<W, ArchiveError> {
    let mut images = Vec::new();
    for reference in references {
        images.push((as_name(reference), store.resolve(reference)?));
    }
    export_docker_images(store, &images, platform, out)
}

/// [`export_docker_archive`] of images given by descriptor (an index or a manifest in the
/// store), each with the name to give it in the archive, if any. For images that are not
/// (yet) named in the store as they should be in the archive, such as a variant of an
/// image with recompressed layers.
pub fn export_docker_images<W: Write>(
    store: &Store,
    named: &[(Option<&str>, Descriptor)],
    platform: &Platform,
    out: W,
) -> Result<W, ArchiveError> {
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = ImageIndex::default();
    let mut images = Vec::new();
    for (name, descriptor) in named {
        let name = *name;
        let image = Image::load(store, descriptor, platform)?;
        let repo_tags: Vec<String> = name
            .filter(|n| !n.contains('@'))
            .map(|n| match tag_of(n) {
                Some(_) => n.to_owned(),
                None => format!("{n}:latest"),
            })
            .into_iter()
            .collect();
        for repo_tag in &repo_tags {
            if let (Some((repo, tag)), Some(top)) =
                (repo_tag.rsplit_once(':'), image.manifest.layers.last())
            {
                repositories
                    .entry(repo.to_owned())
                    .or_default()
                    .insert(tag.to_owned(), top.digest.hex().to_owned());
            }
        }
        entries.push(DockerManifestEntry {
            config: image.manifest.config.digest.layout_path(),
            repo_tags,
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| l.digest.layout_path())
                .collect(),
        });
        index.manifests.push(named_entry(&image.descriptor, name));
        images.push(image);
    }
    let mut w = ArchiveWriter::new(out);
    layout_header(&mut w, &index)?;
    let manifest_json = serde_json::to_vec(&entries).map_err(|source| ArchiveError::Json {
        location: "manifest.json".to_owned(),
        what: "docker manifest",
        source,
    })?;
    w.bytes("manifest.json", &manifest_json)?;
    let repositories_json =
        serde_json::to_vec(&repositories).map_err(|source| ArchiveError::Json {
            location: "repositories".to_owned(),
            what: "repositories file",
            source,
        })?;
    w.bytes("repositories", &repositories_json)?;
    for image in &images {
        w.blob(store, &image.descriptor)?;
        w.blob(store, &image.manifest.config)?;
        for layer in &image.manifest.layers {
            w.blob(store, layer)?;
        }
    }
    w.finish()
}
