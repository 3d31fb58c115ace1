//! Overlay mounts whose options pass a page: an image with many layers gives
//! `lowerdir=` dozens of long snapshot paths. They nearly always share a
//! parent directory, so the mount is made from there with relative lowerdirs,
//! on a thread of its own whose working directory is not the shim's.

use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{anyhow, Context, Result};
use nix::sched::{unshare, CloneFlags};

/// The directory all lowerdirs of `data` (overlay mount options) lie below,
/// and the options with those lowerdirs relative to it. None when there is
/// nothing to gain: one lowerdir, relative ones, or only `/` in common.
pub fn shorten_lowerdirs(data: &str) -> Option<(PathBuf, String)> {
    let options: Vec<&str> = data.split(',').collect();
    let at = options.iter().position(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&str> = options[at]["lowerdir=".len()..].split(':').collect();
    if dirs.len() < 2 || dirs.iter().any(|d| !d.starts_with('/')) {
        return None;
    }
    let common = common_dir(&dirs);
    if common.len() <= 1 {
        return None;
    }
    let mut relative = Vec::with_capacity(dirs.len());
    for d in &dirs {
        let rest = d[common.len()..].trim_start_matches('/');
        if rest.is_empty() {
            return None;
        }
        relative.push(rest);
    }
    let lowerdir = format!("lowerdir={}", relative.join(":"));
    let mut short = options;
    short[at] = &lowerdir;
    Some((PathBuf::from(common), short.join(",")))
}

/// The longest directory that every path lies below (not merely starts
/// with: "/s/1" and "/s/12" share "/s"); "/" if that is all.
fn common_dir<'a>(paths: &[&'a str]) -> &'a str {
    let Some((first, rest)) = paths.split_first() else {
        return "/";
    };
    let mut len = first.len();
    for p in rest {
        len = first
            .bytes()
            .zip(p.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Bytes, not chars: the shared part may end inside a character; the cut
    // is at a '/', which is always a character boundary.
    match first.as_bytes()[..len].iter().rposition(|b| *b == b'/') {
        Some(end) if end > 0 => &first[..end],
        _ => "/",
    }
}

/// Runs `f` on a new thread whose working directory is `dir`; the thread
/// stops sharing its filesystem context first, so the shim's own stays put.
pub fn in_dir<T: Send>(dir: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    thread::scope(|s| {
        thread::Builder::new()
            .name("mount".into())
            .spawn_scoped(s, || {
                unshare(CloneFlags::CLONE_FS).context("cannot unshare the thread's cwd")?;
                std::env::set_current_dir(dir)
                    .with_context(|| format!("cannot change into {}", dir.display()))?;
                f()
            })
            .context("cannot start the mount thread")?
            .join()
            .map_err(|_| anyhow!("the mount thread panicked"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_become_relative_to_their_shared_directory() {
        let data =
            "index=off,lowerdir=/s/snapshots/12/fs:/s/snapshots/1/fs,upperdir=/s/u,workdir=/s/w";
        let (dir, short) = shorten_lowerdirs(data).expect("shortened");
        assert_eq!(dir, PathBuf::from("/s/snapshots"));
        assert_eq!(
            short,
            "index=off,lowerdir=12/fs:1/fs,upperdir=/s/u,workdir=/s/w"
        );
        let (dir, short) = shorten_lowerdirs("lowerdir=/a/b/c:/a/b").expect("shortened");
        assert_eq!(
            (dir, short.as_str()),
            (PathBuf::from("/a"), "lowerdir=b/c:b")
        );
        let (dir, short) = shorten_lowerdirs("lowerdir=/a/x:/a/x").expect("shortened");
        assert_eq!((dir, short.as_str()), (PathBuf::from("/a"), "lowerdir=x:x"));
        // The shared bytes end inside a character (é and è share their first byte).
        let (dir, short) = shorten_lowerdirs("lowerdir=/a/é:/a/è").expect("shortened");
        assert_eq!((dir, short.as_str()), (PathBuf::from("/a"), "lowerdir=é:è"));
    }

    #[test]
    fn nothing_to_gain_is_none() {
        for data in [
            "lowerdir=/a/x",
            "lowerdir=/a/x:/b/y",
            "lowerdir=a/x:a/y",
            "upperdir=/a/x,workdir=/a/y",
        ] {
            assert_eq!(shorten_lowerdirs(data), None, "{data}");
        }
    }
}
