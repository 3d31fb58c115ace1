//! Extended attributes of a path itself (never a symlink's target): layers' xattrs,
//! overlayfs' opaque markers, and the builder's layer diffs.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An xattr call that failed, with the path and attribute it was about.
#[derive(Debug, thiserror::Error)]
#[error("{}: xattr {name}: {source}", path.display())]
pub struct XattrError {
    pub path: PathBuf,
    /// The attribute, or `*` for a listing.
    pub name: String,
    pub source: io::Error,
}

impl XattrError {
    fn new(path: &Path, name: &[u8], source: io::Error) -> Self {
        XattrError {
            path: path.to_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
            source,
        }
    }
}

fn c_string(path: &Path, name: &[u8], bytes: &[u8]) -> Result<CString, XattrError> {
    CString::new(bytes)
        .map_err(|_| XattrError::new(path, name, io::Error::from_raw_os_error(libc::EINVAL)))
}

/// Sets `name` to `value` on `path` (a symlink itself, not its target).
pub fn set_xattr(path: &Path, name: &[u8], value: &[u8]) -> Result<(), XattrError> {
    let p = c_string(path, name, path.as_os_str().as_bytes())?;
    let n = c_string(path, name, name)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; value's pointer and
    // length describe one valid slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(XattrError::new(path, name, io::Error::last_os_error()));
    }
    Ok(())
}

/// Every xattr of `path` with its value, sorted by name. Filesystems without xattr support
/// give none.
pub fn list_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>, XattrError> {
    let p = c_string(path, b"*", path.as_os_str().as_bytes())?;
    let mut names = vec![0u8; 4096];
    let len = loop {
        // SAFETY: the buffer pointer and length describe `names`, which outlives the call.
        let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n.unsigned_abs();
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(XattrError::new(path, b"*", e)),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(c_name) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 256];
        let vlen = loop {
            // SAFETY: strings are NUL-terminated; the buffer pointer and length describe
            // `value`, which outlives the call.
            let n = unsafe {
                libc::lgetxattr(
                    p.as_ptr(),
                    c_name.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            if n >= 0 {
                break n.unsigned_abs();
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => value.resize(value.len() * 16, 0),
                _ => return Err(XattrError::new(path, name, e)),
            }
        };
        value.truncate(vlen);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_list_on_a_symlink_itself() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let file = tmp.path().join("f");
        std::fs::write(&file, "")?;
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink("f", &link)?;
        set_xattr(&link, b"trusted.skiff-test", b"on-the-link")?;
        set_xattr(&file, b"trusted.skiff-test", b"on-the-file")?;
        let of_link = list_xattrs(&link)?;
        assert!(of_link.contains(&("trusted.skiff-test".into(), b"on-the-link".to_vec())));
        let of_file = list_xattrs(&file)?;
        assert!(of_file.contains(&("trusted.skiff-test".into(), b"on-the-file".to_vec())));
        let err = set_xattr(&tmp.path().join("missing"), b"user.x", b"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("missing: xattr user.x"), "{err}");
        Ok(())
    }
}
