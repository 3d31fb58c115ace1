//! Layers unpacked into the snapshot area and seen through real overlay mounts: OCI
//! whiteouts and opaque dirs, hostile tars (escaping symlinks, `..`, absolute names,
//! hardlinks out, overlay xattrs of their own), names that are not UTF-8, metadata, and
//! blobs or diff_ids that do not match.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::layers::{put_image, put_image_with, temps, Entry, Tar, Unmount};
use skiff_specs::layer::LayerError;
use skiff_specs::media_type::Compression;
use skiff_specs::snapshots::{mount_overlay, SnapshotError, Snapshots};
use skiff_specs::xattr::list_xattrs;
use skiff_specs::{Digest, Store};
use tar::EntryType;

struct Area {
    tmp: tempfile::TempDir,
    store: Store,
    snapshots: Snapshots,
}

fn area() -> anyhow::Result<Area> {
    let tmp = tempfile::Builder::new().prefix("skiff-layers-").tempdir()?;
    let store = Store::open(tmp.path().join("store"))?;
    let snapshots = Snapshots::open(tmp.path().join("snapshots"))?;
    Ok(Area {
        tmp,
        store,
        snapshots,
    })
}

fn is_whiteout(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .map(|m| m.file_type().is_char_device() && m.rdev() == 0)
        .unwrap_or(false)
}

fn opaque(path: &Path) -> anyhow::Result<bool> {
    Ok(list_xattrs(path)?
        .iter()
        .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y"))
}

fn names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = fs::read_dir(dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<anyhow::Result<_>>()?;
    out.sort();
    Ok(out)
}

#[test]
fn whiteouts_and_opaque_dirs_give_the_merged_view() -> anyhow::Result<()> {
    let a = area()?;
    let mut base = Tar::default();
    base.dir(b"etc/")?
        .file(b"etc/hosts", b"127.0.0.1 base")?
        .file(b"etc/keep", b"kept")?
        .dir(b"opt/")?
        .file(b"opt/a", b"a")?
        .file(b"opt/b", b"b")?
        .dir(b"var/")?
        .file(b"var/x", b"x")?;
    let mut top = Tar::default();
    top.file(b"etc/.wh.hosts", b"")?
        .file(b"opt/.wh..wh..opq", b"")?
        .file(b"opt/c", b"c")?
        .file(b"var/.wh..wh.plnk", b"")?
        .file(b"new", b"new")?;
    let (base, top) = (base.finish()?, top.finish()?);
    let image = put_image(
        &a.store,
        "wh",
        &[(&base, Compression::Gzip), (&top, Compression::Zstd)],
    )?;
    let lowers = a.snapshots.prepare(&a.store, &image.manifest)?;
    assert_eq!(
        lowers,
        vec![
            a.snapshots.layer_dir(&image.diff_ids[1]),
            a.snapshots.layer_dir(&image.diff_ids[0]),
        ],
        "top layer first"
    );
    let top_dir = &lowers[0];
    assert!(
        is_whiteout(&top_dir.join("etc/hosts")),
        "no overlay whiteout"
    );
    assert!(opaque(&top_dir.join("opt"))?, "opt is not opaque");
    assert!(!top_dir.join("opt/.wh..wh..opq").exists());
    assert!(!top_dir.join("var/.wh..wh.plnk").exists());

    let merged = a.tmp.path().join("merged");
    fs::create_dir(&merged)?;
    let _unmount = Unmount(merged.clone());
    mount_overlay(&lowers, None, None, &merged)?;
    assert_eq!(names(&merged.join("etc"))?, ["keep"]);
    assert_eq!(names(&merged.join("opt"))?, ["c"]);
    assert_eq!(names(&merged.join("var"))?, ["x"]);
    assert_eq!(fs::read(merged.join("new"))?, b"new");
    assert!(fs::write(merged.join("new"), "x").is_err(), "read-only");
    Ok(())
}

/// Everything a hostile layer names lands inside the layer, and the overlay xattrs it
/// carries are dropped.
#[test]
fn hostile_names_and_links_stay_inside() -> anyhow::Result<()> {
    let a = area()?;
    let outside = a.tmp.path().join("outside");
    fs::create_dir(&outside)?;
    fs::write(outside.join("passwd"), "host")?;
    let probe = format!("skiff-escape-{}", std::process::id());
    let outside_bytes = outside.as_os_str().as_bytes();

    let mut t = Tar::default();
    // a -> /etc, then a/PROBE: the layer's etc/PROBE, never the host's.
    t.symlink(b"a", b"/etc")?
        .file(format!("a/{probe}").as_bytes(), b"evil")?;
    // b -> the test's own outside dir, by absolute path, then b/passwd.
    t.symlink(b"b", outside_bytes)?.file(b"b/passwd", b"evil")?;
    // A relative symlink climbing out, then a write through it.
    t.symlink(b"c", b"../../../../..")?
        .file(format!("c/tmp/{probe}").as_bytes(), b"evil")?;
    // An entry over an escaping symlink replaces the symlink, never writes through it.
    t.symlink(b"s", format!("/etc/{probe}").as_bytes())?
        .file(b"s", b"replaced")?
        .symlink(b"sd", outside_bytes)?
        .dir(b"sd/")?;
    t.file(b"../x", b"dotdot")?
        .file(format!("../../../../../../tmp/{probe}").as_bytes(), b"evil")?
        .file(b"/abs", b"absolute")?;
    // Hardlinks whose targets go through the symlinks: resolved inside too.
    t.hardlink(b"hl-etc", format!("a/{probe}").as_bytes())?
        .hardlink(b"hl-b", b"b/passwd")?
        .hardlink(
            b"hl-dots",
            format!("../../{probe}-nothing/../a/{probe}").as_bytes(),
        )?;
    // Overlay xattrs of the layer's own are dropped, others kept.
    t.pax(&[
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.user.overlay.opaque", b"y"),
        ("SCHILY.xattr.user.kept", b"yes"),
    ])?
    .dir(b"d/")?;
    t.pax(&[("SCHILY.xattr.trusted.overlay.metacopy", b"")])?
        .file(b"d/f", b"f")?;
    let tar = t.finish()?;
    let image = put_image(&a.store, "hostile", &[(&tar, Compression::None)])?;
    let lowers = a.snapshots.prepare(&a.store, &image.manifest)?;
    let layer = &lowers[0];

    assert!(!Path::new("/etc").join(&probe).exists(), "wrote into /etc");
    assert!(!Path::new("/tmp").join(&probe).exists(), "wrote into /tmp");
    assert_eq!(fs::read_to_string(outside.join("passwd"))?, "host");
    assert_eq!(names(&outside)?, ["passwd"]);
    let snapshot = layer.parent().map(Path::to_path_buf).unwrap_or_default();
    assert_eq!(names(&snapshot)?, ["fs", "snapshot.json"]);
    assert_eq!(fs::read(layer.join("etc").join(&probe))?, b"evil");
    let inner_outside = layer.join(outside.strip_prefix("/")?);
    assert_eq!(fs::read(inner_outside.join("passwd"))?, b"evil");
    assert_eq!(fs::read(layer.join("tmp").join(&probe))?, b"evil");
    assert_eq!(fs::read(layer.join("x"))?, b"dotdot");
    assert_eq!(fs::read(layer.join("s"))?, b"replaced");
    assert!(fs::symlink_metadata(layer.join("sd"))?.is_dir());
    assert_eq!(fs::read(layer.join("abs"))?, b"absolute");
    let ino = |p: &Path| fs::symlink_metadata(p).map(|m| m.ino());
    assert_eq!(
        ino(&layer.join("hl-etc"))?,
        ino(&layer.join("etc").join(&probe))?
    );
    assert_eq!(
        ino(&layer.join("hl-b"))?,
        ino(&inner_outside.join("passwd"))?
    );
    assert_eq!(
        ino(&layer.join("hl-dots"))?,
        ino(&layer.join("etc").join(&probe))?
    );
    for p in [layer.join("d"), layer.join("d/f")] {
        let xattrs = list_xattrs(&p)?;
        assert!(
            !xattrs.iter().any(|(k, _)| k.contains(".overlay.")),
            "{}: {xattrs:?}",
            p.display()
        );
    }
    assert!(list_xattrs(&layer.join("d"))?.contains(&("user.kept".into(), b"yes".to_vec())));
    Ok(())
}

/// A hardlink to a file outside the layer (by absolute path or by `..`) finds no such
/// file inside: the layer is refused and nothing outside changes.
#[test]
fn hardlinks_out_of_the_layer_are_refused() -> anyhow::Result<()> {
    let a = area()?;
    let outside = a.tmp.path().join("secret");
    fs::write(&outside, "secret")?;
    let outside_name = outside.as_os_str().as_bytes().to_vec();
    let mut dots = b"../../../../../../../..".to_vec();
    dots.extend_from_slice(&outside_name);
    for (i, target) in [outside_name, dots, b"/etc/passwd".to_vec()]
        .iter()
        .enumerate()
    {
        let mut t = Tar::default();
        t.file(b"ok", b"ok")?.hardlink(b"link", target)?;
        let tar = t.finish()?;
        let image = put_image(&a.store, &format!("hl{i}"), &[(&tar, Compression::None)])?;
        let err = a
            .snapshots
            .prepare(&a.store, &image.manifest)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("link: finding the hard link's target"),
            "{i}: {err}"
        );
        assert!(err.contains(&image.layers[0].digest.to_string()), "{err}");
        assert!(!a.snapshots.layer_dir(&image.diff_ids[0]).exists());
        assert_eq!(temps(a.snapshots.root())?, Vec::<String>::new());
    }
    assert_eq!(fs::metadata(&outside)?.nlink(), 1);
    assert_eq!(fs::read_to_string(&outside)?, "secret");
    Ok(())
}

#[test]
fn names_that_are_not_utf8_survive() -> anyhow::Result<()> {
    let a = area()?;
    let mut base = Tar::default();
    base.dir(b"caf\xe9/")?
        .file(b"caf\xe9/\xff\xfe", b"latin-1")?
        .file(b"\xe9t\xe9", b"gone below")?
        .symlink(b"l\xe9", b"caf\xe9/\xff\xfe")?;
    let mut top = Tar::default();
    top.file(b".wh.\xe9t\xe9", b"")?;
    let (base, top) = (base.finish()?, top.finish()?);
    let image = put_image(
        &a.store,
        "latin1",
        &[(&base, Compression::None), (&top, Compression::Gzip)],
    )?;
    let lowers = a.snapshots.prepare(&a.store, &image.manifest)?;
    let p = |base: &Path, name: &[u8]| base.join(OsStr::from_bytes(name));
    assert_eq!(fs::read(p(&lowers[1], b"caf\xe9/\xff\xfe"))?, b"latin-1");
    assert_eq!(
        fs::read_link(p(&lowers[1], b"l\xe9"))?,
        PathBuf::from(OsStr::from_bytes(b"caf\xe9/\xff\xfe"))
    );
    assert!(is_whiteout(&p(&lowers[0], b"\xe9t\xe9")));
    let merged = a.tmp.path().join("merged");
    fs::create_dir(&merged)?;
    let _unmount = Unmount(merged.clone());
    mount_overlay(&lowers, None, None, &merged)?;
    assert!(!p(&merged, b"\xe9t\xe9").exists());
    assert_eq!(fs::read(p(&merged, b"l\xe9"))?, b"latin-1");
    Ok(())
}

#[test]
fn owners_modes_times_and_xattrs_are_kept() -> anyhow::Result<()> {
    let a = area()?;
    let mut t = Tar::default();
    let mut root = Entry::new(EntryType::Directory, b"./");
    root.mode = 0o755;
    root.mtime = 1_000;
    let mut dir = Entry::new(EntryType::Directory, b"private/");
    dir.mode = 0o700;
    dir.uid = 1000;
    dir.gid = 1001;
    dir.mtime = 1_234_567_890;
    let mut file = Entry::new(EntryType::Regular, b"private/suid");
    file.mode = 0o4755;
    file.uid = 1234;
    file.gid = 5678;
    file.mtime = 1_111_111_111;
    file.data = b"#!/bin/sh\n".to_vec();
    let mut link = Entry::new(EntryType::Symlink, b"link");
    link.link = b"private/suid".to_vec();
    link.uid = 7;
    link.gid = 8;
    link.mtime = 2_000;
    let mut fifo = Entry::new(EntryType::Fifo, b"fifo");
    fifo.mode = 0o620;
    let mut blank = Entry::new(EntryType::Regular, b"blank");
    blank.uid = 99;
    blank.blank_numbers = true;
    let mut null = Entry::new(EntryType::Char, b"null");
    null.mode = 0o666;
    null.device = (1, 3);
    // An old-style directory: a regular entry whose name ends in a slash.
    let mut v7 = Entry::new(EntryType::Regular, b"v7dir/");
    v7.mode = 0o711;
    t.entry(&root)?
        .entry(&v7)?
        .entry(&dir)?
        .pax(&[
            ("SCHILY.xattr.user.note", b"hello"),
            ("mtime", b"1111111111.5"),
        ])?
        .entry(&file)?
        .entry(&link)?
        .entry(&fifo)?
        .entry(&blank)?
        .entry(&null)?;
    let tar = t.finish()?;
    let image = put_image(&a.store, "meta", &[(&tar, Compression::Zstd)])?;
    let lowers = a.snapshots.prepare(&a.store, &image.manifest)?;
    let layer = &lowers[0];
    let m = fs::symlink_metadata(layer)?;
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o755, 1_000));
    let m = fs::symlink_metadata(layer.join("v7dir"))?;
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o711);
    let m = fs::symlink_metadata(layer.join("private"))?;
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o700, 1000, 1001, 1_234_567_890)
    );
    let m = fs::symlink_metadata(layer.join("private/suid"))?;
    assert_eq!(
        (
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec()
        ),
        (0o4755, 1234, 5678, 1_111_111_111, 500_000_000)
    );
    assert!(list_xattrs(&layer.join("private/suid"))?
        .contains(&("user.note".into(), b"hello".to_vec())));
    let m = fs::symlink_metadata(layer.join("link"))?;
    assert!(m.file_type().is_symlink());
    assert_eq!((m.uid(), m.gid(), m.mtime()), (7, 8, 2_000));
    let m = fs::symlink_metadata(layer.join("fifo"))?;
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o620);
    // Empty numeric fields read as 0.
    let m = fs::symlink_metadata(layer.join("blank"))?;
    assert_eq!((m.uid(), m.gid(), m.mtime()), (0, 0, 0));
    let m = fs::symlink_metadata(layer.join("null"))?;
    assert!(m.file_type().is_char_device());
    assert_eq!(
        (m.rdev(), m.mode() & 0o7777),
        (nix::sys::stat::makedev(1, 3), 0o666)
    );
    Ok(())
}

/// The config's diff_id does not match the layer: refused, and nothing is kept.
#[test]
fn diff_id_mismatch_keeps_nothing() -> anyhow::Result<()> {
    let a = area()?;
    let mut t = Tar::default();
    t.file(b"f", b"content")?;
    let tar = t.finish()?;
    let wrong = Digest::sha256_of(b"something else");
    let image = put_image_with(
        &a.store,
        "bad",
        &[(&tar, Compression::Gzip)],
        vec![wrong.clone()],
    )?;
    let err = a.snapshots.prepare(&a.store, &image.manifest).err();
    match &err {
        Some(SnapshotError::Layer(LayerError::DiffId {
            layer,
            expected,
            actual,
        })) => {
            assert_eq!(layer, &image.layers[0].digest);
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &Digest::sha256_of(&tar));
        }
        other => anyhow::bail!("expected a diff_id mismatch, got {other:?}"),
    }
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains(&wrong.to_string()), "{text}");
    assert!(!a.snapshots.layer_dir(&wrong).exists());
    assert!(!a.snapshots.layer_dir(&Digest::sha256_of(&tar)).exists());
    assert_eq!(temps(a.snapshots.root())?, Vec::<String>::new());
    assert!(a.snapshots.usage()?.is_empty());
    Ok(())
}

/// A blob changed in the store after it was written (same size): refused by its digest.
#[test]
fn corrupt_blobs_are_refused() -> anyhow::Result<()> {
    let a = area()?;
    let mut t = Tar::default();
    t.file(b"f", &[b'x'; 4096])?;
    let tar = t.finish()?;
    let image = put_image(&a.store, "corrupt", &[(&tar, Compression::None)])?;
    let blob = a.store.blob_path(&image.layers[0].digest);
    let mut bytes = fs::read(&blob)?;
    bytes[1000] ^= 1;
    fs::write(&blob, &bytes)?;
    let err = a.snapshots.prepare(&a.store, &image.manifest).err();
    assert!(
        matches!(
            err,
            Some(SnapshotError::Layer(LayerError::BlobDigest { .. }))
        ),
        "{err:?}"
    );
    assert!(!a.snapshots.layer_dir(&image.diff_ids[0]).exists());
    assert_eq!(temps(a.snapshots.root())?, Vec::<String>::new());
    Ok(())
}
