//! Extended attributes of a path itself (never a symlink's target), for layers' xattrs and
//! overlayfs' opaque markers.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{BuildError, Result};

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| BuildError::Io {
        path: path.to_owned(),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })
}

fn os_err(path: &Path) -> BuildError {
    BuildError::Io {
        path: path.to_owned(),
        source: io::Error::last_os_error(),
    }
}

/// Sets `name` to `value` on `path`.
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let p = c_path(path)?;
    let n = CString::new(name).map_err(|_| BuildError::Io {
        path: path.to_owned(),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })?;
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
        return Err(os_err(path));
    }
    Ok(())
}

/// Every xattr of `path` with its value, sorted by name. Filesystems without xattr support
/// give none.
pub fn list_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let p = c_path(path)?;
    let mut names = vec![0u8; 4096];
    let len = loop {
        // SAFETY: the buffer pointer and length describe `names`, which outlives the call.
        let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n.unsigned_abs();
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(os_err(path)),
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
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::ERANGE) => value.resize(value.len() * 16, 0),
                _ => return Err(os_err(path)),
            }
        };
        value.truncate(vlen);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    out.sort();
    Ok(out)
}
