//! The download cache of `ADD <url>`, under `<build-cache>/http/<sha256 of the URL>/`: the
//! files downloaded from that URL, each named by its content digest and mtime and never
//! changed once written (temp file, fsync, rename), and `etag.json`, the ETag of the latest
//! one. A rebuild asks with If-None-Match and on 304 Not Modified reuses the file without
//! downloading it again; an `ADD --checksum` whose content is here sends no request at all.
//! `skiff-build prune` removes it with the rest of the build cache.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;
use skiff_specs::{Algorithm, Digest, Hasher};

use super::stat_cache::write_atomic;

/// The cache directory of one URL.
#[derive(Debug, Clone)]
pub struct UrlCache {
    dir: PathBuf,
}

/// What the server last sent for the URL with an ETag.
#[derive(Debug, Clone)]
pub struct Known {
    pub etag: String,
    pub digest: Digest,
    pub mtime: u64,
    pub path: PathBuf,
}

impl UrlCache {
    /// The cache of `url` below `root` (`<build-cache>/http`).
    pub fn new(root: &Path, url: &str) -> UrlCache {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(url.as_bytes());
        UrlCache {
            dir: root.join(h.finish().hex()),
        }
    }

    fn content_path(&self, digest: &Digest, mtime: u64) -> PathBuf {
        self.dir
            .join(format!("{}-{}-{mtime}", digest.algorithm(), digest.hex()))
    }

    /// A file with content `digest` (any mtime): its path and mtime.
    pub fn find(&self, digest: &Digest) -> Option<(PathBuf, u64)> {
        let prefix = format!("{}-{}-", digest.algorithm(), digest.hex());
        fs::read_dir(&self.dir).ok()?.flatten().find_map(|e| {
            let name = e.file_name();
            let mtime = name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((e.path(), mtime))
        })
    }

    /// The ETag of the latest download, when its file is still here.
    pub fn known(&self) -> Option<Known> {
        let text = fs::read(self.dir.join("etag.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
        let etag = v.get("etag")?.as_str()?.to_owned();
        let digest = Digest::parse(v.get("digest")?.as_str()?).ok()?;
        let mtime = v.get("mtime")?.as_u64()?;
        let path = self.content_path(&digest, mtime);
        path.is_file().then_some(Known {
            etag,
            digest,
            mtime,
            path,
        })
    }

    /// A new temp file (mode 0600) for a download, removed unless stored.
    pub fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        fs::create_dir_all(&self.dir)?;
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
    }

    /// Keeps a finished download (its mtime already set) and records its ETag (or forgets
    /// the previous one when the reply had none); returns where the file now is.
    pub fn store(
        &self,
        temp: tempfile::NamedTempFile,
        digest: &Digest,
        mtime: u64,
        etag: Option<&str>,
    ) -> io::Result<PathBuf> {
        temp.as_file().sync_all()?;
        let path = self.content_path(digest, mtime);
        temp.persist(&path).map_err(|e| e.error)?;
        File::open(&self.dir)?.sync_all()?;
        let meta = self.dir.join("etag.json");
        match etag {
            Some(etag) => {
                let v = json!({ "etag": etag, "digest": digest.to_string(), "mtime": mtime });
                write_atomic(&meta, v.to_string().as_bytes())?;
            }
            None => match fs::remove_file(&meta) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        Ok(path)
    }
}
