//! Host paths in compose files: relative ones are resolved against a base
//! directory (the project directory, or an included/extended file's own),
//! `~` against HOME, and the result is cleaned lexically (`a/./b/../c` →
//! `a/c`) without touching the filesystem, as compose does.

use std::path::{Component, Path, PathBuf};

/// A host path from a compose file, absolute and clean, as text.
pub(crate) fn resolve(path: &str, base: &Path, home: &Path) -> String {
    absolute(path, base, home).to_string_lossy().into_owned()
}

pub(crate) fn absolute(path: &str, base: &Path, home: &Path) -> PathBuf {
    let joined = if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        base.join(path)
    };
    clean(&joined)
}

/// Drops `.` and resolves `..` lexically; `..` above the root stays at the root.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Whether a build context is a remote one (kept as written).
pub(crate) fn is_remote_context(context: &str) -> bool {
    [
        "http://",
        "https://",
        "git://",
        "git@",
        "ssh://",
        "github.com/",
    ]
    .iter()
    .any(|p| context.starts_with(p))
        || context.ends_with(".git")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves() {
        let base = Path::new("/proj");
        let home = Path::new("/home/me");
        assert_eq!(resolve(".", base, home), "/proj");
        assert_eq!(resolve("./a/../b/./c", base, home), "/proj/b/c");
        assert_eq!(resolve("../x", base, home), "/x");
        assert_eq!(resolve("/abs/./p/", base, home), "/abs/p");
        assert_eq!(resolve("~", base, home), "/home/me");
        assert_eq!(resolve("~/d", base, home), "/home/me/d");
        assert_eq!(resolve("/../..", base, home), "/");
    }

    #[test]
    fn remote_contexts() {
        assert!(is_remote_context("https://github.com/docker/rootfs.git#v1"));
        assert!(is_remote_context("git@github.com:a/b.git"));
        assert!(!is_remote_context("./app"));
    }
}
