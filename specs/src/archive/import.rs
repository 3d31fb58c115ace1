//! Reading OCI layout directories, OCI archives and Docker archives into the
//! store. Every blob is staged (written and verified) first; only when the
//! whole input checks out are the blobs committed and the images named.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::tar_index::TarIndex;
use super::ArchiveError;
use crate::config::ImageConfig;
use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest, DigestWriter};
use crate::index::ImageIndex;
use crate::manifest::ImageManifest;
use crate::media_type::{self, Compression, ANNOTATION_CONTAINERD_IMAGE_NAME};
use crate::store::{self, StagedBlob, Store, StoreError, StoredImage, MAX_JSON_BLOB};

/// Indexes nested deeper than this are refused.
const MAX_DEPTH: usize = 4;

/// Where layout files come from: a directory or a tar archive.
trait LayoutSource {
    fn location(&self, name: &str) -> String;
    fn open(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64), ArchiveError>;
}

struct LayoutDir {
    root: PathBuf,
}

impl LayoutSource for LayoutDir {
    fn location(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    /// `name` is a fixed layout file or a digest's layout path, never input.
    /// The last component is not followed if it is a symlink.
    fn open(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64), ArchiveError> {
        let path = self.root.join(name);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                _ if e.kind() == io::ErrorKind::NotFound => ArchiveError::Missing {
                    location: self.location(name),
                },
                Some(nix::libc::ELOOP) => ArchiveError::BadEntry {
                    location: self.location(name),
                    reason: "is a symlink".to_owned(),
                },
                _ => ArchiveError::Io {
                    path: path.clone(),
                    source: e,
                },
            })?;
        let meta = file.metadata().map_err(|source| ArchiveError::Io {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ArchiveError::BadEntry {
                location: self.location(name),
                reason: "is not a regular file".to_owned(),
            });
        }
        Ok((Box::new(file), meta.len()))
    }
}

impl LayoutSource for TarIndex {
    fn location(&self, name: &str) -> String {
        TarIndex::location(self, name)
    }

    fn open(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64), ArchiveError> {
        let (reader, size) = TarIndex::open(self, name)?;
        Ok((Box::new(reader), size))
    }
}

fn read_small(src: &dyn LayoutSource, name: &str) -> Result<Vec<u8>, ArchiveError> {
    let location = src.location(name);
    let (reader, size) = src.open(name)?;
    if size > MAX_JSON_BLOB {
        return Err(ArchiveError::Invalid {
            location,
            reason: format!("{size} bytes is more than the {MAX_JSON_BLOB} allowed here"),
        });
    }
    let mut bytes = Vec::new();
    reader
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|source| ArchiveError::Io {
            path: location.into(),
            source,
        })?;
    Ok(bytes)
}

fn parse<T: DeserializeOwned>(
    location: &str,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::Json {
        location: location.to_owned(),
        what,
        source,
    })
}

/// Blobs staged so far; committed together at the end.
struct Staging<'s> {
    store: &'s Store,
    staged: Vec<StagedBlob<'s>>,
    seen: HashSet<Digest>,
}

impl<'s> Staging<'s> {
    fn new(store: &'s Store) -> Self {
        Staging {
            store,
            staged: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn map_store_error(location: String) -> impl FnOnce(StoreError) -> ArchiveError {
        move |e| match e {
            StoreError::DigestMismatch { expected, actual } => ArchiveError::DigestMismatch {
                location,
                expected,
                actual,
            },
            StoreError::SizeMismatch {
                expected, actual, ..
            } => ArchiveError::SizeMismatch {
                location,
                expected,
                actual,
            },
            source => ArchiveError::Blob { location, source },
        }
    }

    /// Stages content whose digest and size must match `d`. Content the
    /// store already has is still read and checked, then dropped.
    fn stage(
        &mut self,
        location: String,
        d: &Descriptor,
        reader: impl Read,
        size: u64,
    ) -> Result<(), ArchiveError> {
        if size != d.size {
            return Err(ArchiveError::SizeMismatch {
                location,
                expected: d.size,
                actual: size,
            });
        }
        if self.store.has_blob(&d.digest)? {
            let mut sink = DigestWriter::new(io::sink(), d.digest.algorithm());
            io::copy(&mut reader.take(size), &mut sink).map_err(|source| ArchiveError::Io {
                path: location.clone().into(),
                source,
            })?;
            let (_, actual, _) = sink.finish();
            if actual != d.digest {
                return Err(ArchiveError::DigestMismatch {
                    location,
                    expected: d.digest.clone(),
                    actual,
                });
            }
            return Ok(());
        }
        let staged = self
            .store
            .stage_blob(reader, Some(&d.digest), Some(d.size))
            .map_err(Self::map_store_error(location))?;
        self.staged.push(staged);
        Ok(())
    }

    /// Stages a blob of an OCI layout by its digest.
    fn stage_blob(&mut self, src: &dyn LayoutSource, d: &Descriptor) -> Result<(), ArchiveError> {
        if !self.seen.insert(d.digest.clone()) {
            return Ok(());
        }
        let name = d.digest.layout_path();
        let (reader, size) = src.open(&name)?;
        self.stage(src.location(&name), d, reader, size)
    }

    /// Reads a JSON blob of an OCI layout, verifies and stages it.
    fn stage_json<T: DeserializeOwned>(
        &mut self,
        src: &dyn LayoutSource,
        d: &Descriptor,
        what: &'static str,
    ) -> Result<T, ArchiveError> {
        let name = d.digest.layout_path();
        let location = src.location(&name);
        let bytes = read_small(src, &name)?;
        let actual = Digest::compute(d.digest.algorithm(), &bytes);
        if bytes.len() as u64 != d.size {
            return Err(ArchiveError::SizeMismatch {
                location,
                expected: d.size,
                actual: bytes.len() as u64,
            });
        }
        if actual != d.digest {
            return Err(ArchiveError::DigestMismatch {
                location,
                expected: d.digest.clone(),
                actual,
            });
        }
        let value = parse(&location, what, &bytes)?;
        if self.seen.insert(d.digest.clone()) {
            self.stage(location, d, &bytes[..], d.size)?;
        }
        Ok(value)
    }

    /// Stages an image (index or manifest) and everything it reaches.
    fn stage_image(
        &mut self,
        src: &dyn LayoutSource,
        d: &Descriptor,
        depth: usize,
    ) -> Result<(), ArchiveError> {
        if self.seen.contains(&d.digest) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(ArchiveError::Invalid {
                location: src.location(&d.digest.layout_path()),
                reason: format!("image indexes nested deeper than {MAX_DEPTH}"),
            });
        }
        if media_type::is_index(&d.media_type) {
            let index: ImageIndex = self.stage_json(src, d, "image index")?;
            for child in &index.manifests {
                self.stage_image(src, child, depth + 1)?;
            }
        } else if media_type::is_manifest(&d.media_type) {
            let manifest: ImageManifest = self.stage_json(src, d, "image manifest")?;
            let config = &manifest.config;
            if config.media_type == media_type::OCI_CONFIG
                || config.media_type == media_type::DOCKER_CONFIG
            {
                let image_config: ImageConfig = self.stage_json(src, config, "image config")?;
                if image_config.rootfs.diff_ids.len() != manifest.layers.len() {
                    return Err(ArchiveError::Invalid {
                        location: src.location(&d.digest.layout_path()),
                        reason: format!(
                            "manifest has {} layers but its config lists {} diff_ids",
                            manifest.layers.len(),
                            image_config.rootfs.diff_ids.len()
                        ),
                    });
                }
            } else {
                self.stage_blob(src, config)?;
            }
            for layer in &manifest.layers {
                self.stage_blob(src, layer)?;
            }
        } else if depth == 0 {
            return Err(ArchiveError::Invalid {
                location: src.location("index.json"),
                reason: format!(
                    "entry {} has media type {:?}, not an image manifest or index",
                    d.digest, d.media_type
                ),
            });
        } else {
            self.stage_blob(src, d)?;
        }
        Ok(())
    }

    fn commit(self) -> Result<(), ArchiveError> {
        for staged in self.staged {
            staged.commit()?;
        }
        Ok(())
    }
}

/// Names images after their blobs are in: `names` per descriptor, or an
/// unnamed index entry when there is none.
fn name_images(
    store: &Store,
    targets: Vec<(Descriptor, Vec<String>)>,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let mut out = Vec::new();
    for (descriptor, names) in targets {
        if names.is_empty() {
            store.add_unnamed(&descriptor)?;
            out.push(StoredImage {
                name: None,
                descriptor: descriptor.clone(),
            });
        }
        for name in names {
            store.tag(&name, &descriptor)?;
            out.push(StoredImage {
                name: Some(name),
                descriptor: descriptor.clone(),
            });
        }
    }
    Ok(out)
}

fn check_name(location: &str, name: &str) -> Result<(), ArchiveError> {
    store::validate_name(name).map_err(|e| ArchiveError::Invalid {
        location: location.to_owned(),
        reason: e.to_string(),
    })
}

fn import_oci(
    store: &Store,
    src: &dyn LayoutSource,
    select: Option<&str>,
    rename: Option<&str>,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let layout = read_small(src, "oci-layout")?;
    store::check_layout_file(Path::new(&src.location("oci-layout")), &layout)?;
    let index_location = src.location("index.json");
    let index: ImageIndex = parse(
        &index_location,
        "image index",
        &read_small(src, "index.json")?,
    )?;
    let entry_name = |d: &Descriptor| {
        d.annotation(ANNOTATION_CONTAINERD_IMAGE_NAME)
            .or_else(|| d.ref_name())
            .map(str::to_owned)
    };
    let chosen: Vec<&Descriptor> = match select {
        Some(tag) => index
            .manifests
            .iter()
            .filter(|d| {
                d.ref_name() == Some(tag)
                    || d.annotation(ANNOTATION_CONTAINERD_IMAGE_NAME) == Some(tag)
            })
            .collect(),
        None => index.manifests.iter().collect(),
    };
    if chosen.is_empty() {
        let available: Vec<String> = index.manifests.iter().filter_map(entry_name).collect();
        return match select {
            Some(tag) => Err(ArchiveError::TagNotFound {
                location: index_location,
                tag: tag.to_owned(),
                available: if available.is_empty() {
                    "no named images".to_owned()
                } else {
                    available.join(", ")
                },
            }),
            None => Err(ArchiveError::Invalid {
                location: index_location,
                reason: "lists no images".to_owned(),
            }),
        };
    }
    if rename.is_some() && chosen.len() > 1 {
        return Err(ArchiveError::Invalid {
            location: index_location,
            reason: format!(
                "lists {} images; name one (PATH:TAG) to import it under a new name",
                chosen.len()
            ),
        });
    }
    let mut targets = Vec::new();
    for d in chosen {
        let name = rename.map(str::to_owned).or_else(|| entry_name(d));
        if let Some(name) = &name {
            check_name(&index_location, name)?;
        }
        let mut descriptor = d.clone();
        descriptor.annotations = None;
        targets.push((descriptor, name.into_iter().collect::<Vec<_>>()));
    }
    // Keeps gc from collecting committed blobs before they are named.
    let _lease = store.lease()?;
    let mut staging = Staging::new(store);
    for (d, _) in &targets {
        staging.stage_image(src, d, 0)?;
    }
    staging.commit()?;
    name_images(store, targets)
}

/// Imports from an OCI image layout directory: the index entry whose
/// ref name (or containerd image name) is `tag`, or every entry. Images are
/// named `rename` (one image only) or as their annotations name them.
pub fn import_layout_dir(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    rename: Option<&str>,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let meta = fs::metadata(dir).map_err(|source| ArchiveError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ArchiveError::Unsupported {
            path: dir.to_owned(),
            reason: "an OCI layout must be a directory".to_owned(),
        });
    }
    import_oci(
        store,
        &LayoutDir {
            root: dir.to_owned(),
        },
        tag,
        rename,
    )
}

/// Imports an OCI archive or a Docker archive (`docker save`), told apart
/// by content; an archive that is both (Docker 25+) is read as OCI. `tag`
/// picks one image (OCI ref name, containerd image name, or a Docker
/// RepoTag); `rename` names a single imported image.
pub fn import_archive(
    store: &Store,
    path: &Path,
    tag: Option<&str>,
    rename: Option<&str>,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let archive = open_archive(store, path)?;
    if archive.has_file("oci-layout") && archive.has_file("index.json") {
        import_oci(store, &archive, tag, rename)
    } else if archive.has_file("manifest.json") {
        import_docker(store, &archive, tag, rename)
    } else {
        Err(ArchiveError::Unsupported {
            path: archive.path().to_owned(),
            reason: "neither an OCI archive (oci-layout, index.json) nor a Docker archive \
                     (manifest.json)"
                .to_owned(),
        })
    }
}

/// Opens a tar archive, first decompressing a gzipped one (`docker save |
/// gzip`) into an unnamed temp file beside the store's blobs.
fn open_archive(store: &Store, path: &Path) -> Result<TarIndex, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut head = [0u8; 4];
    let n = file.read_at(&mut head, 0).map_err(io_err)?;
    match Compression::sniff(&head[..n]) {
        Compression::None => TarIndex::scan(file, path),
        Compression::Gzip => {
            let mut plain =
                tempfile::tempfile_in(store.root()).map_err(|source| ArchiveError::Io {
                    path: store.root().to_owned(),
                    source,
                })?;
            let mut decoder =
                Compression::Gzip
                    .decompress(file)
                    .map_err(|source| ArchiveError::Tar {
                        path: path.to_owned(),
                        source,
                    })?;
            io::copy(&mut decoder, &mut plain).map_err(|source| ArchiveError::Tar {
                path: path.to_owned(),
                source,
            })?;
            TarIndex::scan(plain, path)
        }
        Compression::Zstd => Err(ArchiveError::Unsupported {
            path: path.to_owned(),
            reason: "the archive is zstd-compressed; decompress it first".to_owned(),
        }),
    }
}

/// Checks a gzip or zstd layer's uncompressed content against its diff id.
fn check_compressed_diff_id(
    archive: &TarIndex,
    member: &str,
    diff_id: &Digest,
    zstd: bool,
) -> Result<(), ArchiveError> {
    let location = archive.location(member);
    let (reader, _) = TarIndex::open(archive, member)?;
    let bad = |source: io::Error| ArchiveError::Invalid {
        location: location.clone(),
        reason: format!(
            "{} layer does not decompress: {source}",
            if zstd { "zstd" } else { "gzip" }
        ),
    };
    let compression = if zstd {
        Compression::Zstd
    } else {
        Compression::Gzip
    };
    let mut decoder = compression.decompress(reader).map_err(bad)?;
    let mut hasher = DigestWriter::new(io::sink(), diff_id.algorithm());
    io::copy(&mut decoder, &mut hasher).map_err(bad)?;
    let (_, actual, _) = hasher.finish();
    if actual != *diff_id {
        return Err(ArchiveError::DigestMismatch {
            location,
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Member names that carry a digest must match the content:
/// `blobs/<alg>/<hex>` (Docker 25+) and `<hex>.json` (older configs).
fn check_member_digest(
    archive: &TarIndex,
    member: &str,
    actual: &Digest,
) -> Result<(), ArchiveError> {
    let claimed = if let Some(rest) = member.strip_prefix("blobs/") {
        let Some((alg, hex)) = rest.split_once('/') else {
            return Ok(());
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Ok(()),
        };
        Some(
            Digest::from_parts(algorithm, hex).map_err(|e| ArchiveError::Invalid {
                location: archive.location(member),
                reason: format!("blob name is not a digest: {e}"),
            })?,
        )
    } else {
        member
            .strip_suffix(".json")
            .and_then(|hex| Digest::from_parts(Algorithm::Sha256, hex).ok())
    };
    match claimed {
        Some(claimed) if claimed.algorithm() != actual.algorithm() => Ok(()),
        Some(claimed) if claimed != *actual => Err(ArchiveError::DigestMismatch {
            location: archive.location(member),
            expected: claimed,
            actual: actual.clone(),
        }),
        _ => Ok(()),
    }
}

fn import_docker(
    store: &Store,
    archive: &TarIndex,
    select: Option<&str>,
    rename: Option<&str>,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let manifest_location = archive.location("manifest.json");
    let entries: Vec<DockerEntry> = parse(
        &manifest_location,
        "docker manifest",
        &read_small(archive, "manifest.json")?,
    )?;
    let chosen: Vec<&DockerEntry> = match select {
        Some(tag) => entries
            .iter()
            .filter(|e| e.repo_tags.iter().flatten().any(|t| t == tag))
            .collect(),
        None => entries.iter().collect(),
    };
    if chosen.is_empty() {
        let available: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.repo_tags.iter().flatten())
            .map(String::as_str)
            .collect();
        return Err(match select {
            Some(tag) => ArchiveError::TagNotFound {
                location: manifest_location,
                tag: tag.to_owned(),
                available: available.join(", "),
            },
            None => ArchiveError::Invalid {
                location: manifest_location,
                reason: "lists no images".to_owned(),
            },
        });
    }
    if rename.is_some() && chosen.len() > 1 {
        return Err(ArchiveError::Invalid {
            location: manifest_location,
            reason: format!(
                "lists {} images; pick one by tag to import it under a new name",
                chosen.len()
            ),
        });
    }
    let mut names_per_entry = Vec::new();
    for entry in &chosen {
        let names: Vec<String> = match rename {
            Some(name) => vec![name.to_owned()],
            None => entry.repo_tags.clone().unwrap_or_default(),
        };
        for name in &names {
            check_name(&manifest_location, name)?;
        }
        names_per_entry.push(names);
    }

    let _lease = store.lease()?;
    let mut staging = Staging::new(store);
    let mut targets = Vec::new();
    for (entry, names) in chosen.into_iter().zip(names_per_entry) {
        let config_location = archive.location(&entry.config);
        let config_bytes = read_small(archive, &entry.config)?;
        let config_digest = Digest::sha256_of(&config_bytes);
        check_member_digest(archive, &entry.config, &config_digest)?;
        let config: ImageConfig = parse(&config_location, "image config", &config_bytes)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(ArchiveError::Invalid {
                location: manifest_location,
                reason: format!(
                    "image {} lists {} layers but its config has {} diff_ids",
                    entry.config,
                    entry.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let config_desc = Descriptor::new(
            media_type::OCI_CONFIG,
            config_digest,
            config_bytes.len() as u64,
        );
        staging.stage(
            config_location,
            &config_desc,
            &config_bytes[..],
            config_desc.size,
        )?;

        let mut layers = Vec::new();
        for (member, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let location = archive.location(member);
            let (mut reader, size) = TarIndex::open(archive, member)?;
            let mut head = [0u8; 4];
            let mut filled = 0;
            while filled < head.len() {
                let n = reader
                    .read(&mut head[filled..])
                    .map_err(|source| ArchiveError::Io {
                        path: location.clone().into(),
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            let compression = Compression::sniff(&head[..filled]);
            let staged = store
                .stage_blob(
                    io::Cursor::new(&head[..filled]).chain(reader),
                    None,
                    Some(size),
                )
                .map_err(Staging::map_store_error(location.clone()))?;
            let digest = staged.digest().clone();
            check_member_digest(archive, member, &digest)?;
            // An uncompressed layer is its own diff; a compressed one is
            // decompressed to check.
            match compression {
                Compression::None if digest != *diff_id => {
                    return Err(ArchiveError::DigestMismatch {
                        location,
                        expected: diff_id.clone(),
                        actual: digest,
                    })
                }
                Compression::Gzip => check_compressed_diff_id(archive, member, diff_id, false)?,
                Compression::Zstd => check_compressed_diff_id(archive, member, diff_id, true)?,
                Compression::None => {}
            }
            layers.push(Descriptor::new(
                compression.oci_layer_media_type(),
                digest,
                size,
            ));
            staging.staged.push(staged);
        }
        let manifest = ImageManifest::new_oci(config_desc, layers);
        let manifest_bytes = manifest.to_json().map_err(|source| ArchiveError::Json {
            location: manifest_location.clone(),
            what: "image manifest",
            source,
        })?;
        let manifest_desc = Descriptor::new(
            media_type::OCI_MANIFEST,
            Digest::sha256_of(&manifest_bytes),
            manifest_bytes.len() as u64,
        );
        staging.stage(
            manifest_location.clone(),
            &manifest_desc,
            &manifest_bytes[..],
            manifest_desc.size,
        )?;
        targets.push((manifest_desc, names));
    }
    staging.commit()?;
    name_images(store, targets)
}
