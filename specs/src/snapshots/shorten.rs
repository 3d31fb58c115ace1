//! Overlay mount options as the kernel parses them (options split at unescaped `,`,
//! lowerdirs at unescaped `:`, `\` escaping the next byte), and making an over-long
//! `lowerdir=` short: the kernel copies at most a page of mount data, and an image with
//! many layers gives dozens of long snapshot paths.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The mount data the kernel takes, with its final NUL.
pub(super) const PAGE: usize = 4096;

const LOWERDIR: &[u8] = b"lowerdir=";

/// `bytes` with `\`, `,` and `:` escaped, for a path in overlay options.
pub(super) fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for b in bytes {
        if matches!(b, b'\\' | b',' | b':') {
            out.push(b'\\');
        }
        out.push(*b);
    }
    out
}

fn unescape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut escaped = false;
    for b in bytes {
        if !escaped && *b == b'\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(*b);
    }
    out
}

/// `bytes` split at every `sep` not escaped by a backslash.
fn split(bytes: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if *b == b'\\' {
            escaped = true;
        } else if *b == sep {
            out.push(&bytes[start..i]);
            start = i + 1;
        }
    }
    out.push(&bytes[start..]);
    out
}

/// Overlay mount data with its `lowerdir=` option taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Options<'a> {
    parts: Vec<&'a [u8]>,
    at: usize,
    /// The lowerdirs, unescaped, top first.
    pub lowers: Vec<PathBuf>,
}

impl<'a> Options<'a> {
    /// None when `data` has no `lowerdir=`.
    pub fn parse(data: &'a [u8]) -> Option<Options<'a>> {
        let parts = split(data, b',');
        let at = parts.iter().position(|p| p.starts_with(LOWERDIR))?;
        let lowers = split(&parts[at][LOWERDIR.len()..], b':')
            .into_iter()
            .map(|l| PathBuf::from(OsStr::from_bytes(&unescape(l))))
            .collect();
        Some(Options { parts, at, lowers })
    }

    /// The data with `lowerdir=` set to `lowers` (each escaped).
    pub fn with_lowers<P: AsRef<Path>>(&self, lowers: &[P]) -> Vec<u8> {
        let mut lowerdir = LOWERDIR.to_vec();
        for (i, l) in lowers.iter().enumerate() {
            if i > 0 {
                lowerdir.push(b':');
            }
            lowerdir.extend(escape(l.as_ref().as_os_str().as_bytes()));
        }
        let mut out = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(if i == self.at { &lowerdir } else { p });
        }
        out
    }

    /// The directory every lowerdir lies below, and the data with the lowerdirs relative
    /// to it. None when there is nothing to gain: one lowerdir, relative ones, or only `/`
    /// in common.
    pub fn relative_to_common_dir(&self) -> Option<(PathBuf, Vec<u8>)> {
        if self.lowers.len() < 2 || self.lowers.iter().any(|l| !l.is_absolute()) {
            return None;
        }
        let common = common_dir(&self.lowers)?;
        let relative = self
            .lowers
            .iter()
            .map(|l| l.strip_prefix(&common).ok().map(Path::to_path_buf))
            .collect::<Option<Vec<_>>>()?;
        Some((common, self.with_lowers(&relative)))
    }
}

/// The deepest directory every path lies strictly below ("/s/1" and "/s/12" share "/s";
/// "/a/b/c" and "/a/b" share "/a"); None if that is `/`. Paths are compared by
/// components, so `.` and doubled slashes do not matter and `..` stays as written.
fn common_dir(paths: &[PathBuf]) -> Option<PathBuf> {
    let (first, rest) = paths.split_first()?;
    let mut common: Vec<Component<'_>> = first.components().collect();
    for p in rest {
        let shared = common
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(shared);
    }
    // Strictly below: a path that is the common part itself gives up its last component.
    if paths.iter().any(|p| p.components().count() == common.len()) {
        common.pop();
    }
    if common.len() <= 1 {
        return None;
    }
    Some(common.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shorten(data: &str) -> Option<(PathBuf, String)> {
        let options = Options::parse(data.as_bytes())?;
        let (dir, short) = options.relative_to_common_dir()?;
        Some((dir, String::from_utf8(short).ok()?))
    }

    #[test]
    fn lowerdirs_become_relative_to_their_shared_directory() {
        let data =
            "index=off,lowerdir=/s/snapshots/12/fs:/s/snapshots/1/fs,upperdir=/s/u,workdir=/s/w";
        let (dir, short) = shorten(data).expect("shortened");
        assert_eq!(dir, PathBuf::from("/s/snapshots"));
        assert_eq!(
            short,
            "index=off,lowerdir=12/fs:1/fs,upperdir=/s/u,workdir=/s/w"
        );
        let (dir, short) = shorten("lowerdir=/a/b/c:/a/b").expect("shortened");
        assert_eq!(
            (dir, short.as_str()),
            (PathBuf::from("/a"), "lowerdir=b/c:b")
        );
        let (dir, short) = shorten("lowerdir=/a/x:/a/x").expect("shortened");
        assert_eq!((dir, short.as_str()), (PathBuf::from("/a"), "lowerdir=x:x"));
        // The shared bytes end inside a character (é and è share their first byte).
        let (dir, short) = shorten("lowerdir=/a/é:/a/è").expect("shortened");
        assert_eq!((dir, short.as_str()), (PathBuf::from("/a"), "lowerdir=é:è"));
        // Escaped separators stay escaped; unrelated options stay as they were.
        let (dir, short) = shorten(r"lowerdir=/a\:b/x\,y:/a\:b/z,userxattr").expect("shortened");
        assert_eq!(
            (dir, short.as_str()),
            (PathBuf::from("/a:b"), r"lowerdir=x\,y:z,userxattr")
        );
    }

    #[test]
    fn nothing_to_gain_is_none() {
        for data in [
            "lowerdir=/a/x",
            "lowerdir=/a/x:/b/y",
            "lowerdir=a/x:a/y",
            "upperdir=/a/x,workdir=/a/y",
        ] {
            assert_eq!(shorten(data), None, "{data}");
        }
    }

    #[test]
    fn escapes_round_trip() {
        let raw = br"/x\y,z:w";
        let escaped = escape(raw);
        assert_eq!(escaped, br"/x\\y\,z\:w");
        assert_eq!(unescape(&escaped), raw);
        assert_eq!(split(br"a\,b,c", b','), vec![&br"a\,b"[..], b"c"]);
    }
}
