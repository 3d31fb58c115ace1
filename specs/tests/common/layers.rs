//! Layer tars written entry by entry with raw byte names (hostile ones too: `..`,
//! absolute, not UTF-8, escaping links), images of them in a store, and a guard that
//! unmounts on every way out of a test.

use std::path::PathBuf;

use skiff_specs::config::{ImageConfig, RootFs};
use skiff_specs::media_type::{self, Compression};
use skiff_specs::{Descriptor, Digest, ImageManifest, Platform, Store};
use tar::EntryType;

/// One tar entry; names and link targets are bytes, written as they are.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: EntryType,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub device: (u32, u32),
    /// uid, gid and mtime fields left empty (NULs), as some tools write them.
    pub blank_numbers: bool,
}

impl Entry {
    pub fn new(kind: EntryType, name: &[u8]) -> Entry {
        Entry {
            name: name.to_vec(),
            kind,
            data: Vec::new(),
            link: Vec::new(),
            mode: if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            device: (0, 0),
            blank_numbers: false,
        }
    }
}

/// A layer tar being written.
pub struct Tar(tar::Builder<Vec<u8>>);

impl Default for Tar {
    fn default() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }
}

impl Tar {
    pub fn entry(&mut self, e: &Entry) -> anyhow::Result<&mut Self> {
        let mut h = tar::Header::new_gnu();
        anyhow::ensure!(e.name.len() <= 100 && e.link.len() <= 100, "name too long");
        let old = h.as_old_mut();
        old.name[..e.name.len()].copy_from_slice(&e.name);
        old.linkname[..e.link.len()].copy_from_slice(&e.link);
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.device.0)?;
            h.set_device_minor(e.device.1)?;
        }
        if e.blank_numbers {
            let old = h.as_old_mut();
            old.uid = [0; 8];
            old.gid = [0; 8];
            old.mtime = [0; 12];
        }
        h.set_cksum();
        self.0.append(&h, e.data.as_slice())?;
        Ok(self)
    }

    pub fn dir(&mut self, name: &[u8]) -> anyhow::Result<&mut Self> {
        self.entry(&Entry::new(EntryType::Directory, name))
    }

    pub fn file(&mut self, name: &[u8], data: &[u8]) -> anyhow::Result<&mut Self> {
        let mut e = Entry::new(EntryType::Regular, name);
        e.data = data.to_vec();
        self.entry(&e)
    }

    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> anyhow::Result<&mut Self> {
        let mut e = Entry::new(EntryType::Symlink, name);
        e.link = target.to_vec();
        e.mode = 0o777;
        self.entry(&e)
    }

    pub fn hardlink(&mut self, name: &[u8], target: &[u8]) -> anyhow::Result<&mut Self> {
        let mut e = Entry::new(EntryType::Link, name);
        e.link = target.to_vec();
        self.entry(&e)
    }

    /// PAX records for the entry that follows.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> anyhow::Result<&mut Self> {
        self.0.append_pax_extensions(records.iter().copied())?;
        Ok(self)
    }

    pub fn finish(self) -> anyhow::Result<Vec<u8>> {
        Ok(self.0.into_inner()?)
    }
}

/// An image put in a store: its manifest, layer blobs and diff_ids.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub manifest: Descriptor,
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
}

pub fn compress(tar: &[u8], compression: Compression) -> anyhow::Result<Vec<u8>> {
    Ok(match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => super::gzip(tar)?,
        Compression::Zstd => zstd::encode_all(tar, 1)?,
    })
}

/// Puts an image of `layers` (tars, bottom first, each compressed as given) in `store`
/// and names it `name`.
pub fn put_image(
    store: &Store,
    name: &str,
    layers: &[(&[u8], Compression)],
) -> anyhow::Result<TestImage> {
    let diff_ids = layers.iter().map(|(t, _)| Digest::sha256_of(t)).collect();
    put_image_with(store, name, layers, diff_ids)
}

/// [`put_image`] with the config's diff_ids given (right or wrong).
pub fn put_image_with(
    store: &Store,
    name: &str,
    layers: &[(&[u8], Compression)],
    diff_ids: Vec<Digest>,
) -> anyhow::Result<TestImage> {
    let mut descs = Vec::new();
    for (tar, compression) in layers {
        let blob = compress(tar, *compression)?;
        let (digest, size) = store.put_blob(blob.as_slice(), None, None)?;
        descs.push(Descriptor::new(
            compression.oci_layer_media_type(),
            digest,
            size,
        ));
    }
    let host = Platform::host();
    let config = ImageConfig {
        architecture: host.architecture.clone(),
        os: host.os.clone(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: diff_ids.clone(),
        },
        ..ImageConfig::default()
    };
    let config = store.put_json(media_type::OCI_CONFIG, &config)?;
    let manifest = ImageManifest::new_oci(config, descs.clone());
    let manifest = store.put_json(media_type::OCI_MANIFEST, &manifest)?;
    store.tag(name, &manifest)?;
    Ok(TestImage {
        manifest,
        layers: descs,
        diff_ids,
    })
}

/// Unmounts (detaching) whatever is mounted at the path when dropped: after a failed
/// assertion too.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        for _ in 0..8 {
            if nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

/// The `.tmp-*` entries of a snapshot area.
pub fn temps(root: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            out.push(name);
        }
    }
    Ok(out)
}
