//! Resolving a path inside a root directory as if chrooted there: `..` stops at the root and
//! symlinks (absolute or relative) resolve against it, so neither can lead outside. Used for
//! COPY sources in the context and destinations in a rootfs.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one lookup, as the kernel allows.
const MAX_SYMLINKS: usize = 40;

/// The host path of `path` inside `root`. Missing components are kept as written (the
/// caller may create them). The last component is followed only when `follow_last`.
pub fn resolve_in(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut done: Vec<String> = Vec::new();
    let mut pending: Vec<String> = split(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            done.pop();
            continue;
        }
        let here = join(root, &done).join(&name);
        let is_last = pending.is_empty();
        let meta = match fs::symlink_metadata(&here) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                done.push(name);
                continue;
            }
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() && (!is_last || follow_last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = fs::read_link(&here)?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                done.clear();
            }
            pending.extend(split(&target).into_iter().rev());
            continue;
        }
        done.push(name);
    }
    Ok(join(root, &done))
}

fn split(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// `path` made absolute against `workdir` and cleaned lexically (`..` stops at `/`).
pub fn absolute(workdir: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", workdir.trim_end_matches('/'))
    };
    let mut out: Vec<&str> = Vec::new();
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stays_inside() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        fs::create_dir_all(root.join("a/b"))?;
        symlink("/etc", root.join("abs"))?;
        symlink("../../..", root.join("a/b/up"))?;
        assert_eq!(
            resolve_in(root, "../../etc/passwd", true)?,
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in(root, "abs/passwd", true)?,
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in(root, "a/b/up/x", true)?, root.join("x"));
        assert_eq!(resolve_in(root, "abs", false)?, root.join("abs"));
        assert_eq!(resolve_in(root, "abs", true)?, root.join("etc"));
        Ok(())
    }

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute("/app", "x/y"), "/app/x/y");
        assert_eq!(absolute("/app", "/x/../../y"), "/y");
        assert_eq!(absolute("/", "."), "/");
    }
}
