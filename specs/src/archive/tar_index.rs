//! Random access to the members of an uncompressed tar file, treating the
//! archive as hostile: names are normalized and checked (no absolute paths,
//! no `..`), duplicates and special files are refused, and links are resolved
//! inside the archive's own namespace. Nothing is ever written to disk by
//! entry name; members are only read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::ArchiveError;

/// More entries than any image archive has; a bound on memory for hostile input.
const MAX_ENTRIES: usize = 200_000;
/// Links followed when resolving one name.
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Dir,
    Symlink(String),
    Hardlink(String),
}

/// The members of a tar file by normalized name.
#[derive(Debug)]
pub(crate) struct TarIndex {
    path: PathBuf,
    file: File,
    members: HashMap<String, Member>,
}

/// A reader over one member's bytes.
#[derive(Debug)]
pub(crate) struct MemberReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside a member",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl TarIndex {
    /// Reads the headers of the uncompressed tar `file`; `path` is what
    /// error messages call it.
    pub(crate) fn scan(mut file: File, path: &Path) -> Result<Self, ArchiveError> {
        file.seek(SeekFrom::Start(0))
            .map_err(|source| ArchiveError::Io {
                path: path.to_owned(),
                source,
            })?;
        let tar_err = |source| ArchiveError::Tar {
            path: path.to_owned(),
            source,
        };
        let mut members = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        for entry in archive.entries_with_seek().map_err(tar_err)? {
            let entry = entry.map_err(tar_err)?;
            let raw_name = entry.path_bytes();
            let location = format!("{}:{}", path.display(), String::from_utf8_lossy(&raw_name));
            let name = std::str::from_utf8(&raw_name)
                .map_err(|_| ArchiveError::UnsafeEntry {
                    location: location.clone(),
                    reason: "name is not UTF-8".to_owned(),
                })
                .and_then(|n| {
                    normalize(n).map_err(|reason| ArchiveError::UnsafeEntry {
                        location: location.clone(),
                        reason,
                    })
                })?;
            let kind = entry.header().entry_type();
            let link = || -> Result<String, ArchiveError> {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ArchiveError::BadEntry {
                        location: location.clone(),
                        reason: "link without a target".to_owned(),
                    })?;
                String::from_utf8(target.into_owned()).map_err(|_| ArchiveError::UnsafeEntry {
                    location: location.clone(),
                    reason: "link target is not UTF-8".to_owned(),
                })
            };
            let member = if kind.is_file() || kind.is_contiguous() {
                Member::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }
            } else if kind.is_dir() {
                Member::Dir
            } else if kind.is_symlink() {
                Member::Symlink(link()?)
            } else if kind.is_hard_link() {
                Member::Hardlink(link()?)
            } else if kind.is_pax_global_extensions() {
                continue;
            } else {
                return Err(ArchiveError::BadEntry {
                    location,
                    reason: format!("unexpected entry type {kind:?} in an image archive"),
                });
            };
            if name.is_empty() {
                if matches!(member, Member::Dir) {
                    continue;
                }
                return Err(ArchiveError::UnsafeEntry {
                    location,
                    reason: "entry names the archive root".to_owned(),
                });
            }
            let is_dir = matches!(member, Member::Dir);
            if let Some(old) = members.insert(name, member) {
                // Repeated directory entries are harmless; repeated files
                // would make the content ambiguous.
                if !(is_dir && matches!(old, Member::Dir)) {
                    return Err(ArchiveError::BadEntry {
                        location,
                        reason: "entry appears more than once".to_owned(),
                    });
                }
            }
            if members.len() > MAX_ENTRIES {
                return Err(ArchiveError::BadEntry {
                    location,
                    reason: format!("more than {MAX_ENTRIES} entries"),
                });
            }
        }
        Ok(TarIndex {
            path: path.to_owned(),
            file,
            members,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `ARCHIVE:NAME`, for error messages.
    pub(crate) fn location(&self, name: &str) -> String {
        format!("{}:{name}", self.path.display())
    }

    /// Whether a regular file (possibly behind links) has this name.
    pub(crate) fn has_file(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    /// Opens a member by name, following links inside the archive.
    pub(crate) fn open(&self, name: &str) -> Result<(MemberReader<'_>, u64), ArchiveError> {
        let (offset, size) = self.resolve(name)?;
        Ok((
            MemberReader {
                file: &self.file,
                pos: offset,
                end: offset.saturating_add(size),
            },
            size,
        ))
    }

    fn resolve(&self, name: &str) -> Result<(u64, u64), ArchiveError> {
        let location = self.location(name);
        let mut current = normalize(name).map_err(|reason| ArchiveError::UnsafeEntry {
            location: location.clone(),
            reason,
        })?;
        for _ in 0..MAX_LINK_HOPS {
            let next = match self.members.get(&current) {
                None => return Err(ArchiveError::Missing { location }),
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Dir) => {
                    return Err(ArchiveError::BadEntry {
                        location,
                        reason: "is a directory".to_owned(),
                    })
                }
                Some(Member::Hardlink(target)) => normalize(target),
                Some(Member::Symlink(target)) => {
                    if target.starts_with('/') {
                        Err("symlink target is absolute".to_owned())
                    } else {
                        let parent = current.rsplit_once('/').map_or("", |(dir, _)| dir);
                        normalize_lexically(&format!("{parent}/{target}"))
                    }
                }
            };
            current = next.map_err(|reason| ArchiveError::UnsafeEntry {
                location: location.clone(),
                reason,
            })?;
        }
        Err(ArchiveError::BadEntry {
            location,
            reason: format!("more than {MAX_LINK_HOPS} links to follow"),
        })
    }
}

/// An entry name as a relative path without `.`, empty components or a
/// trailing slash. Absolute names and `..` are refused.
pub(crate) fn normalize(name: &str) -> Result<String, String> {
    if name.starts_with('/') {
        return Err("absolute path".to_owned());
    }
    if name.contains('\0') {
        return Err("NUL in name".to_owned());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("`..` in path".to_owned()),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Like [`normalize`] but resolves `..` against earlier components (for
/// relative symlink targets), refusing to climb above the archive root.
fn normalize_lexically(path: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("link points outside the archive".to_owned());
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("./index.json").as_deref(), Ok("index.json"));
        assert_eq!(normalize("blobs//sha256/").as_deref(), Ok("blobs/sha256"));
        assert!(normalize("../x").is_err());
        assert!(normalize("a/../../x").is_err());
        assert!(normalize("/etc/passwd").is_err());
        assert_eq!(normalize_lexically("a/../b").as_deref(), Ok("b"));
        assert!(normalize_lexically("a/../../b").is_err());
    }
}
