//! COPY and ADD of local files: from the build context (honouring .dockerignore) or from
//! another stage's rootfs, into the step's rootfs. Sources resolve inside their root (no `..`
//! or symlink leads out of it); destinations resolve inside the rootfs. Copied entries get
//! the --chown owner (default 0:0) and --chmod mode; a local tar archive given to ADD is
//! extracted.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::fcntl::AtFlags;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};

use super::archive_format::{is_tar, open_decompressed};
use super::resolve::resolve_in;
use crate::error::{BuildError, Result};
use crate::frontend::DockerIgnore;

/// At most this many threads copy (or walk) one directory tree.
const COPY_THREADS: usize = 4;

/// An entry below a copied directory, as `CopyJob::children` finds it.
struct Child {
    name: std::ffi::OsString,
    /// Path relative to the source root.
    rel: String,
    src: PathBuf,
    meta: fs::Metadata,
}

/// An entry a copy reads, with the metadata the walk found (one stat per entry).
#[derive(Debug)]
pub struct Input {
    /// Path relative to the source root.
    pub rel: String,
    pub host: PathBuf,
    pub meta: fs::Metadata,
}

/// One source of a COPY/ADD.
#[derive(Debug, Clone)]
pub enum CopySource {
    /// A path (wildcards allowed in the last component) inside the source root.
    Path(String),
    /// A heredoc: a file named `name` with this content.
    Inline { name: String, content: String },
    /// A downloaded file (ADD <url>) at `path` on the host, copied as `name` with its mode
    /// and mtime.
    Fetched { name: String, path: PathBuf },
}

/// A COPY/ADD with everything expanded and resolved.
#[derive(Debug)]
pub struct CopyJob<'a> {
    /// The build context or another stage's rootfs.
    pub src_root: &'a Path,
    /// The context's .dockerignore (None for a stage source).
    pub ignore: Option<&'a DockerIgnore>,
    /// `--exclude` patterns, matched against paths relative to the source root and to each
    /// copied directory.
    pub exclude: Option<&'a DockerIgnore>,
    pub sources: Vec<CopySource>,
    /// Absolute destination inside the rootfs, trailing `/` kept.
    pub dest: String,
    pub dest_root: &'a Path,
    /// --chown's uid and gid; None keeps the source's (for exporting a rootfs).
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    /// ADD: extract local tar archives.
    pub extract_archives: bool,
    /// COPY --parents: keep each source's path (relative to the source root) under dest.
    pub parents: bool,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl<'a> CopyJob<'a> {
    /// All of `src_root` into `dest_root` as it is (owners and modes kept): a rootfs
    /// exported.
    pub fn whole_tree(src_root: &'a Path, dest_root: &'a Path) -> CopyJob<'a> {
        CopyJob {
            src_root,
            ignore: None,
            exclude: None,
            sources: vec![CopySource::Path("/".to_owned())],
            dest: "/".to_owned(),
            dest_root,
            owner: None,
            chmod: None,
            extract_archives: false,
            parents: false,
        }
    }

    /// Runs the copy; errors name the source as written.
    pub fn run(&self, step: &str) -> Result<()> {
        let mut expanded: Vec<(String, PathBuf)> = Vec::new();
        let mut inline = Vec::new();
        let mut fetched = Vec::new();
        for src in &self.sources {
            match src {
                CopySource::Inline { name, content } => inline.push((name, content)),
                CopySource::Fetched { name, path } => fetched.push((name, path)),
                CopySource::Path(p) => expanded.extend(self.expand(p, step)?),
            }
        }
        let many = expanded.len() + inline.len() + fetched.len() > 1
            || self
                .sources
                .iter()
                .any(|s| matches!(s, CopySource::Path(p) if has_wildcard(p)));
        let dest_host = resolve_in(self.dest_root, &self.dest, true)
            .map_err(|e| BuildError::step(step, format!("destination {}: {e}", self.dest)))?;
        let dest_is_dir = self.dest.ends_with('/') || many || dest_host.is_dir();
        if many && !self.dest.ends_with('/') && !dest_host.is_dir() {
            return Err(BuildError::step(
                step,
                "when copying several sources the destination must be a directory ending in /",
            ));
        }
        for (name, content) in inline {
            let target = if dest_is_dir {
                format!("{}/{name}", self.dest.trim_end_matches('/'))
            } else {
                self.dest.clone()
            };
            let host = self.prepare_target(&target, step)?;
            remove_non_dir(&host)?;
            fs::write(&host, content).map_err(BuildError::io(&host))?;
            self.finish_entry(&host, 0o644, (0, 0))?;
        }
        for (name, path) in fetched {
            let target = if dest_is_dir {
                format!("{}/{name}", self.dest.trim_end_matches('/'))
            } else {
                self.dest.clone()
            };
            let dst = self.prepare_target(&target, step)?;
            let meta = fs::symlink_metadata(path).map_err(BuildError::io(path))?;
            self.copy_entry(path, &dst, &meta)?;
        }
        for (rel, host) in expanded {
            let meta = fs::symlink_metadata(&host).map_err(BuildError::io(&host))?;
            if self.parents && !rel.is_empty() {
                let target = format!("{}/{rel}", self.dest.trim_end_matches('/'));
                if meta.is_dir() {
                    let dir = self.prepare_dir(&target, step)?;
                    self.copy_entry(&host, &dir, &meta)?;
                    self.copy_children(&host, &rel, &rel, &dir, &target)?;
                    set_times(&dir, &meta)?;
                } else {
                    let dst = self.prepare_target(&target, step)?;
                    self.copy_entry(&host, &dst, &meta)?;
                }
                continue;
            }
            if meta.is_dir() {
                let dir = self.prepare_dir(&self.dest, step)?;
                self.copy_children(&host, &rel, &rel, &dir, self.dest.trim_end_matches('/'))?;
                continue;
            }
            if self.extract_archives
                && meta.is_file()
                && is_tar(&host).map_err(BuildError::io(&host))?
            {
                let dir = self.prepare_dir(&self.dest, step)?;
                self.extract(&host, &dir, step)?;
                continue;
            }
            let base = Path::new(&rel)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = if dest_is_dir {
                format!("{}/{base}", self.dest.trim_end_matches('/'))
            } else {
                self.dest.clone()
            };
            let dst = self.prepare_target(&target, step)?;
            self.copy_entry(&host, &dst, &meta)?;
        }
        Ok(())
    }

    /// A source path → (path relative to the root, host path), wildcards matched.
    fn expand(&self, pattern: &str, step: &str) -> Result<Vec<(String, PathBuf)>> {
        let clean = super::resolve::absolute("/", pattern);
        let (parent, last) = clean.rsplit_once('/').unwrap_or(("", clean.as_str()));
        let mut out = Vec::new();
        if has_wildcard(last) {
            let dir = resolve_in(self.src_root, parent, true)
                .map_err(|e| BuildError::step(step, format!("{pattern}: {e}")))?;
            let mut names: Vec<String> = match fs::read_dir(&dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| glob_match(last, n))
                    .collect(),
                Err(_) => Vec::new(),
            };
            names.sort();
            for n in names {
                let rel = format!("{}/{n}", parent.trim_start_matches('/'))
                    .trim_start_matches('/')
                    .to_owned();
                if !self.excluded(&rel) && !self.excluded_by_flag(&rel, "") {
                    out.push((rel, dir.join(n)));
                }
            }
        } else {
            let host = resolve_in(self.src_root, &clean, true)
                .map_err(|e| BuildError::step(step, format!("{pattern}: {e}")))?;
            let rel = host
                .strip_prefix(self.src_root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let is_dir = host.is_dir();
            let ignored = !rel.is_empty()
                && ((self.excluded(&rel)
                    && !(is_dir && self.ignore.is_some_and(|i| i.may_include_below(&rel))))
                    || (!is_dir && self.excluded_by_flag(&rel, "")));
            if host.symlink_metadata().is_ok() && !ignored {
                out.push((rel, host));
            }
        }
        if out.is_empty() {
            return Err(BuildError::step(
                step,
                format!(
                    "{pattern}: not found{}",
                    if self.ignore.is_some() {
                        " in the build context (or excluded by .dockerignore)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(out)
    }

    fn excluded(&self, rel: &str) -> bool {
        self.ignore.is_some_and(|i| i.is_excluded(rel))
    }

    /// Whether --exclude drops `rel` (relative to the source root), also tried relative to
    /// the copied directory `top`.
    fn excluded_by_flag(&self, rel: &str, top: &str) -> bool {
        let Some(ex) = self.exclude else {
            return false;
        };
        let inner = if top.is_empty() {
            rel
        } else {
            rel.strip_prefix(top)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(rel)
        };
        ex.is_excluded(rel) || ex.is_excluded(inner)
    }

    /// Resolves `target` in the rootfs, creating its parent directories.
    fn prepare_target(&self, target: &str, step: &str) -> Result<PathBuf> {
        let (parent, _) = target.rsplit_once('/').unwrap_or(("", target));
        self.prepare_dir(parent, step)?;
        resolve_in(self.dest_root, target, false)
            .map_err(|e| BuildError::step(step, format!("{target}: {e}")))
    }

    /// Resolves the directory `dir` in the rootfs, creating it (and parents) as needed.
    fn prepare_dir(&self, dir: &str, step: &str) -> Result<PathBuf> {
        make_dirs(self.dest_root, dir, self.owner.unwrap_or((0, 0)), step)
    }

    /// Copies the children of `src` (at `rel` in the source root; `top` is the directory the
    /// COPY named) into `dst` (at `dst_rel` in the rootfs, resolved to `dst`). The
    /// subdirectories of the named directory are shared out among threads: creating files
    /// is most of a big COPY's time.
    fn copy_children(
        &self,
        src: &Path,
        top: &str,
        rel: &str,
        dst: &Path,
        dst_rel: &str,
    ) -> Result<()> {
        let children = self.children(src, top, rel)?;
        if rel != top {
            return children
                .iter()
                .try_for_each(|child| self.copy_child(child, top, dst, dst_rel));
        }
        for_each_shared(&children, |_, child| {
            self.copy_child(child, top, dst, dst_rel)
        })
    }

    /// Copies `child` (and what is below it) into the directory `dst` (`dst_rel` in the
    /// rootfs).
    fn copy_child(&self, child: &Child, top: &str, dst: &Path, dst_rel: &str) -> Result<()> {
        let child_dst_rel = format!("{dst_rel}/{}", child.name.to_string_lossy());
        // `dst` is resolved already, so only the child itself can be a symlink; a directory
        // goes where such a link leads (inside the rootfs), anything else replaces it.
        let mut child_dst = dst.join(&child.name);
        if child.meta.is_dir()
            && fs::symlink_metadata(&child_dst).is_ok_and(|m| m.file_type().is_symlink())
        {
            child_dst = resolve_in(self.dest_root, &child_dst_rel, true)
                .map_err(BuildError::io(dst.join(&child.name)))?;
        }
        self.copy_entry(&child.src, &child_dst, &child.meta)?;
        if child.meta.is_dir() {
            self.copy_children(&child.src, top, &child.rel, &child_dst, &child_dst_rel)?;
            // After its children, which changed its times.
            set_times(&child_dst, &child.meta)?;
        }
        Ok(())
    }

    /// The entries below `src` (at `rel` under the source root) that the copy takes, in
    /// name order: one walk for both the copy and its cache inputs, so the two always agree.
    fn children(&self, src: &Path, top: &str, rel: &str) -> Result<Vec<Child>> {
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(BuildError::io(src))?
            .filter_map(|e| e.ok().map(|e| (e.file_name(), e)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(entries.len());
        for (name, entry) in entries {
            let child_rel = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            let child_src = src.join(&name);
            // Stat relative to the open directory (not following a symlink): no walk down
            // the whole path for every entry.
            let meta = entry.metadata().map_err(BuildError::io(&child_src))?;
            if self.skip_child(&child_rel, top, meta.is_dir()) {
                continue;
            }
            out.push(Child {
                name,
                rel: child_rel,
                src: child_src,
                meta,
            });
        }
        Ok(out)
    }

    /// Whether .dockerignore or --exclude drop the entry `rel` below the copied directory
    /// `top` (a directory stays when an exception may include something below it).
    fn skip_child(&self, rel: &str, top: &str, is_dir: bool) -> bool {
        (self.excluded(rel) && !(is_dir && self.ignore.is_some_and(|i| i.may_include_below(rel))))
            || (self.excluded_by_flag(rel, top)
                && !(is_dir && self.exclude.is_some_and(|e| e.may_include_below(rel))))
    }

    /// What the copy reads, in copy order, directories followed by what is copied from below
    /// them. The cache key hashes these.
    pub fn inputs(&self, step: &str) -> Result<Vec<Input>> {
        let mut out = Vec::new();
        for src in &self.sources {
            let CopySource::Path(p) = src else { continue };
            for (rel, host) in self.expand(p, step)? {
                let meta = fs::symlink_metadata(&host).map_err(BuildError::io(&host))?;
                let is_dir = meta.is_dir();
                out.push(Input {
                    rel: rel.clone(),
                    host: host.clone(),
                    meta,
                });
                if is_dir {
                    self.child_inputs(&host, &rel, &rel, &mut out)?;
                }
            }
        }
        Ok(out)
    }

    fn child_inputs(&self, src: &Path, top: &str, rel: &str, out: &mut Vec<Input>) -> Result<()> {
        let children = self.children(src, top, rel)?;
        if rel == top {
            // The named directory's subtrees are walked by several threads, each into its
            // own list; the lists are joined in copy order.
            let parts: Vec<Mutex<Vec<Input>>> =
                children.iter().map(|_| Mutex::new(Vec::new())).collect();
            for_each_shared(&children, |at, child| {
                let mut part = Vec::new();
                self.child_input(child, top, &mut part)?;
                if let Some(slot) = parts.get(at) {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = part;
                }
                Ok(())
            })?;
            for part in parts {
                out.extend(part.into_inner().unwrap_or_else(PoisonError::into_inner));
            }
            return Ok(());
        }
        for child in &children {
            self.child_input(child, top, out)?;
        }
        Ok(())
    }

    /// `child` and what is below it, as inputs.
    fn child_input(&self, child: &Child, top: &str, out: &mut Vec<Input>) -> Result<()> {
        out.push(Input {
            rel: child.rel.clone(),
            host: child.src.clone(),
            meta: child.meta.clone(),
        });
        if child.meta.is_dir() {
            self.child_inputs(&child.src, top, &child.rel, out)?;
        }
        Ok(())
    }

    /// Copies one entry (a directory without its children, and without its times: the
    /// caller sets them when its children are in).
    fn copy_entry(&self, src: &Path, dst: &Path, meta: &fs::Metadata) -> Result<()> {
        let ft = meta.file_type();
        let source_owner = (meta.uid(), meta.gid());
        if ft.is_dir() {
            match fs::symlink_metadata(dst) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(dst).map_err(BuildError::io(dst))?;
                    fs::create_dir(dst).map_err(BuildError::io(dst))?;
                }
                Err(_) => fs::create_dir(dst).map_err(BuildError::io(dst))?,
            }
            return self.finish_entry(dst, meta.mode() & 0o7777, source_owner);
        } else if ft.is_symlink() {
            let target = fs::read_link(src).map_err(BuildError::io(src))?;
            remove_non_dir(dst)?;
            symlink(&target, dst).map_err(BuildError::io(dst))?;
            lchown(dst, self.owner.unwrap_or(source_owner))?;
        } else if ft.is_file() {
            let mut input = File::open(src).map_err(BuildError::io(src))?;
            let create = || {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(dst)
            };
            // Usually nothing is there: try first, look only when something is.
            let mut out = match create() {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    remove_non_dir(dst)?;
                    create()
                }
                other => other,
            }
            .map_err(BuildError::io(dst))?;
            io::copy(&mut input, &mut out).map_err(BuildError::io(dst))?;
            // Owner, mode and times through the open file: no more path lookups.
            let (uid, gid) = self.owner.unwrap_or(source_owner);
            fchown(
                out.as_raw_fd(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
            )
            .map_err(|e| BuildError::io(dst)(e.into()))?;
            let mode = self.chmod.unwrap_or(meta.mode() & 0o7777);
            out.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(BuildError::io(dst))?;
            let times = fs::FileTimes::new()
                .set_accessed(meta.accessed().map_err(BuildError::io(src))?)
                .set_modified(meta.modified().map_err(BuildError::io(src))?);
            return out.set_times(times).map_err(BuildError::io(dst));
        } else {
            // Devices, fifos and sockets in a context are not copied (BuildKit refuses
            // most of them too).
            return Ok(());
        }
        set_times(dst, meta)
    }

    /// Owner and mode (the --chmod one if given) of a file or directory just written.
    fn finish_entry(&self, path: &Path, mode: u32, source_owner: (u32, u32)) -> Result<()> {
        lchown(path, self.owner.unwrap_or(source_owner))?;
        let mode = self.chmod.unwrap_or(mode);
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(BuildError::io(path))
    }

    fn extract(&self, archive: &Path, dir: &Path, step: &str) -> Result<()> {
        let input = open_decompressed(archive).map_err(BuildError::io(archive))?;
        let mut tar = tar::Archive::new(input);
        tar.set_preserve_permissions(true);
        tar.set_preserve_ownerships(true);
        tar.set_preserve_mtime(true);
        tar.set_overwrite(true);
        tar.unpack(dir).map_err(|e| {
            BuildError::step(
                step,
                format!("extracting {}: {}", archive.display(), chain(&e)),
            )
        })
    }
}

/// An error with its causes (tar's errors keep the useful part in a cause).
fn chain(e: &io::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.get_ref().and_then(|inner| inner.source());
    while let Some(c) = cause {
        msg = format!("{msg}: {c}");
        cause = c.source();
    }
    msg
}

/// Resolves the directory `dir` inside `root`, creating what is missing (mode 0755, owned
/// by `owner`). Fails when a component exists and is not a directory.
pub fn make_dirs(root: &Path, dir: &str, owner: (u32, u32), step: &str) -> Result<PathBuf> {
    let mut so_far = String::new();
    let mut host = root.to_path_buf();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        so_far.push('/');
        so_far.push_str(part);
        host = resolve_in(root, &so_far, true)
            .map_err(|e| BuildError::step(step, format!("{so_far}: {e}")))?;
        match fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(BuildError::step(
                    step,
                    format!("{so_far} exists in the image and is not a directory"),
                ))
            }
            Err(_) => {
                fs::create_dir(&host).map_err(BuildError::io(&host))?;
                fs::set_permissions(&host, fs::Permissions::from_mode(0o755))
                    .map_err(BuildError::io(&host))?;
                lchown(&host, owner)?;
            }
        }
    }
    Ok(host)
}

/// Runs `work` on every item, the items shared out among threads when there are
/// directories among them (each a subtree's worth of work): the first error is returned,
/// and the other threads stop at their next item.
fn for_each_shared(
    children: &[Child],
    work: impl Fn(usize, &Child) -> Result<()> + Sync,
) -> Result<()> {
    let subdirs = children.iter().filter(|c| c.meta.is_dir()).count();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(COPY_THREADS)
        .min(subdirs);
    if threads < 2 {
        return children
            .iter()
            .enumerate()
            .try_for_each(|(at, child)| work(at, child));
    }
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(None);
    let worker = || loop {
        let at = next.fetch_add(1, Ordering::Relaxed);
        let Some(child) = children.get(at) else {
            break;
        };
        if let Err(e) = work(at, child) {
            failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(e);
            next.store(children.len(), Ordering::Relaxed);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(worker);
        }
        worker();
    });
    match failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sets the atime and mtime of `path` (not following a symlink) to those of `meta`.
fn set_times(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| BuildError::io(path)(e.into()))
}

fn remove_non_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(BuildError::Io {
            path: path.to_owned(),
            source: io::Error::other("is a directory in the image; cannot replace it with a file"),
        }),
        Ok(_) => fs::remove_file(path).map_err(BuildError::io(path)),
        Err(_) => Ok(()),
    }
}

fn lchown(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    fchownat(
        None,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| BuildError::io(path)(e.into()))
}

/// Shell-style matching of one path component: `*`, `?`, `[...]` (with `!`/`^` negation).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`: (matched, index after `]`),
/// or None for an unterminated class.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*a*b", "xxaxxb"));
    }
}
