//! The snapshot area across processes: concurrent prepares unpack each layer once, a
//! killed unpack leaves nothing that is trusted and is cleaned up, gc keeps what it is
//! asked to (and what is pinned) and frees the rest. Children are forked and synchronised
//! through pipes; no verdict depends on timing.

mod common;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use common::layers::{put_image, put_image_with, temps, Tar, TestImage, Unmount};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};
use skiff_specs::media_type::Compression;
use skiff_specs::snapshots::{mount_overlay, store_diff_ids, SnapshotError, Snapshots};
use skiff_specs::{Digest, Store};

/// A layer with a few files of pseudo-random bytes (`seed` makes it unique).
fn layer(seed: u64, files: usize, size: usize) -> anyhow::Result<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut t = Tar::default();
    t.dir(format!("l{seed}/").as_bytes())?;
    for f in 0..files {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Compressible but not trivially.
                (state % 16) as u8
            })
            .collect();
        t.file(format!("l{seed}/f{f}").as_bytes(), &data)?;
    }
    t.file(b"shared", format!("{seed}").as_bytes())?;
    t.finish()
}

struct Area {
    tmp: tempfile::TempDir,
    store: Store,
    snapshots: Snapshots,
}

fn area() -> anyhow::Result<Area> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-snapshots-")
        .tempdir()?;
    let store = Store::open(tmp.path().join("store"))?;
    let snapshots = Snapshots::open(tmp.path().join("snapshots"))?;
    Ok(Area {
        tmp,
        store,
        snapshots,
    })
}

/// Ends a forked child at once, without the parent's destructors or atexit handlers.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit only ends the process.
    unsafe { nix::libc::_exit(code) }
}

fn read_byte(fd: &OwnedFd) -> anyhow::Result<usize> {
    let mut byte = [0u8; 1];
    Ok(nix::unistd::read(fd.as_raw_fd(), &mut byte)?)
}

#[test]
fn concurrent_prepares_unpack_each_layer_once() -> anyhow::Result<()> {
    let a = area()?;
    let tars = [
        layer(1, 4, 1 << 20)?,
        layer(2, 4, 1 << 20)?,
        layer(3, 4, 1 << 20)?,
    ];
    let image = put_image(
        &a.store,
        "three",
        &[
            (&tars[0], Compression::Zstd),
            (&tars[1], Compression::Gzip),
            (&tars[2], Compression::None),
        ],
    )?;
    let (go_read, go_write) = pipe()?;
    let mut children = Vec::new();
    for n in 0..2 {
        let report = a.tmp.path().join(format!("child{n}"));
        // SAFETY: the child only does file I/O, flock and unpacking, then leaves with
        // _exit, never returning into the test harness.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(go_write);
                // Both start together when the parent says so.
                if read_byte(&go_read).ok() != Some(1) {
                    exit_child(2);
                }
                let code = match a.snapshots.prepare_layers(&a.store, &image.manifest) {
                    Ok(prepared) => {
                        let mut text = String::new();
                        for d in &prepared.unpacked {
                            text.push_str(&format!("unpacked {d}\n"));
                        }
                        for l in &prepared.lowers {
                            text.push_str(&format!("lower {}\n", l.display()));
                        }
                        i32::from(fs::write(&report, text).is_err())
                    }
                    Err(e) => {
                        let _ = fs::write(&report, format!("error {e}\n"));
                        1
                    }
                };
                exit_child(code);
            }
            ForkResult::Parent { child } => children.push((child, report)),
        }
    }
    drop(go_read);
    let mut go = File::from(go_write);
    go.write_all(b"gg")?;
    let mut unpacked = Vec::new();
    let mut lowers = Vec::new();
    for (child, report) in children {
        let status = waitpid(child, None)?;
        let text = fs::read_to_string(&report).unwrap_or_default();
        assert_eq!(status, WaitStatus::Exited(child, 0), "{text}");
        unpacked.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("unpacked "))
                .map(str::to_owned),
        );
        lowers.push(
            text.lines()
                .filter_map(|l| l.strip_prefix("lower "))
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
    }
    unpacked.sort();
    let mut want: Vec<String> = image.diff_ids.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(unpacked, want, "each layer unpacked exactly once in all");
    assert_eq!(lowers[0], lowers[1], "both got the same dirs");
    let expected: Vec<String> = image
        .diff_ids
        .iter()
        .rev()
        .map(|d| a.snapshots.layer_dir(d).display().to_string())
        .collect();
    assert_eq!(lowers[0], expected);
    // And the dirs hold the layers.
    for (seed, d) in (1..=3).zip(&image.diff_ids) {
        let dir = a.snapshots.layer_dir(d);
        assert_eq!(fs::read_to_string(dir.join("shared"))?, seed.to_string());
        assert_eq!(
            fs::metadata(dir.join(format!("l{seed}/f3")))?.len(),
            1 << 20
        );
    }
    // A third prepare finds everything done.
    let again = a.snapshots.prepare_layers(&a.store, &image.manifest)?;
    assert!(again.unpacked.is_empty());
    assert_eq!(temps(a.snapshots.root())?, Vec::<String>::new());
    Ok(())
}

/// Yields nothing more: tells the parent it got here, then blocks until killed.
struct Stall {
    progress: Option<File>,
    never: OwnedFd,
}

impl Read for Stall {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        if let Some(mut p) = self.progress.take() {
            p.write_all(b"p")?;
        }
        let mut byte = [0u8; 1];
        nix::unistd::read(self.never.as_raw_fd(), &mut byte)?;
        Err(std::io::Error::other("the parent let go"))
    }
}

#[test]
fn a_killed_unpack_is_never_trusted_and_is_cleaned_up() -> anyhow::Result<()> {
    let a = area()?;
    let tar = layer(7, 2, 4 << 20)?;
    let image = put_image(&a.store, "big", &[(&tar, Compression::None)])?;
    let blob = fs::read(a.store.blob_path(&image.layers[0].digest))?;
    let (progress_read, progress_write) = pipe()?;
    let (never_read, never_write) = pipe()?;
    // SAFETY: the child only unpacks (file I/O, flock) and is killed or leaves with _exit.
    let child = match unsafe { fork() }? {
        ForkResult::Child => {
            drop(progress_read);
            drop(never_write);
            // Part of the first file, then nothing.
            let stall = Stall {
                progress: Some(File::from(progress_write)),
                never: never_read,
            };
            let reader = (&blob[..(3 << 20)]).chain(stall);
            let _ = a
                .snapshots
                .unpack(&image.layers[0], &image.diff_ids[0], reader);
            exit_child(1);
        }
        ForkResult::Parent { child } => child,
    };
    drop(progress_write);
    drop(never_read);
    let killed = (|| -> anyhow::Result<()> {
        anyhow::ensure!(read_byte(&progress_read)? == 1, "the child ended early");
        // In the middle of the unpack: a temp with part of the first file.
        let during = temps(a.snapshots.root())?;
        anyhow::ensure!(during.len() == 1, "temps: {during:?}");
        let partial = a.snapshots.root().join(&during[0]).join("fs/l7/f0");
        let size = fs::metadata(&partial)?.len();
        anyhow::ensure!(size > 0 && size < 4 << 20, "{size} bytes");
        // A live unpack's temp is left alone.
        Snapshots::open(a.snapshots.root())?;
        anyhow::ensure!(temps(a.snapshots.root())? == during, "a live temp went");
        Ok(())
    })();
    kill(child, Signal::SIGKILL)?;
    waitpid(child, None)?;
    drop(never_write);
    killed?;
    assert!(!a.snapshots.layer_dir(&image.diff_ids[0]).exists());
    let reopened = Snapshots::open(a.snapshots.root())?;
    assert_eq!(temps(reopened.root())?, Vec::<String>::new());
    let prepared = reopened.prepare_layers(&a.store, &image.manifest)?;
    assert_eq!(prepared.unpacked, image.diff_ids);
    let dir = reopened.layer_dir(&image.diff_ids[0]);
    assert_eq!(fs::metadata(dir.join("l7/f0"))?.len(), 4 << 20);
    assert_eq!(fs::metadata(dir.join("l7/f1"))?.len(), 4 << 20);
    Ok(())
}

fn set(digests: &[&Digest]) -> HashSet<Digest> {
    digests.iter().map(|d| (*d).clone()).collect()
}

#[test]
fn gc_keeps_what_is_asked_and_pinned_and_frees_the_rest() -> anyhow::Result<()> {
    let a = area()?;
    let (t1, t2, t3) = (
        layer(1, 1, 64 << 10)?,
        layer(2, 1, 64 << 10)?,
        layer(3, 1, 64 << 10)?,
    );
    let img_a = put_image(
        &a.store,
        "a",
        &[(&t1, Compression::Zstd), (&t2, Compression::Zstd)],
    )?;
    let img_b = put_image(
        &a.store,
        "b",
        &[(&t1, Compression::Gzip), (&t3, Compression::Gzip)],
    )?;
    let (l1, l2, l3) = (&img_a.diff_ids[0], &img_a.diff_ids[1], &img_b.diff_ids[1]);
    a.snapshots.prepare(&a.store, &img_a.manifest)?;
    // Layer 1 is there already, whatever its compression in b.
    let prepared = a.snapshots.prepare_layers(&a.store, &img_b.manifest)?;
    assert_eq!(prepared.unpacked, vec![l3.clone()]);
    let usage = a.snapshots.usage()?;
    assert_eq!(usage.len(), 3);
    assert!(
        usage.iter().all(|(_, bytes)| *bytes >= 64 << 10),
        "{usage:?}"
    );
    let bytes_of = |d: &Digest| usage.iter().find(|(u, _)| u == d).map(|(_, b)| *b);

    // What the store's images need: everything.
    assert_eq!(store_diff_ids(&a.store)?, set(&[l1, l2, l3]));
    let none = a.snapshots.gc_with(|| store_diff_ids(&a.store))?;
    assert!(none.removed.is_empty());

    // A killed maker's leftover, without even a lock.
    fs::create_dir(a.snapshots.root().join(".tmp-junk"))?;
    let gc = a.snapshots.gc(&set(&[l1, l2]))?;
    assert_eq!(gc.removed, vec![l3.clone()]);
    assert_eq!(Some(gc.freed_bytes), bytes_of(l3));
    assert_eq!(gc.removed_temps, 1);
    assert!(!a.snapshots.layer_dir(l3).exists());
    assert!(a.snapshots.layer_dir(l1).is_dir() && a.snapshots.layer_dir(l2).is_dir());
    assert_eq!(temps(a.snapshots.root())?, Vec::<String>::new());

    // Pinned snapshots stay whatever the keep set says.
    a.snapshots.pin("c1", std::slice::from_ref(l2))?;
    assert_eq!(
        a.snapshots.pins()?,
        vec![("c1".to_owned(), vec![l2.clone()])]
    );
    let gc = a.snapshots.gc(&HashSet::new())?;
    assert_eq!(gc.removed, vec![l1.clone()]);
    assert!(a.snapshots.layer_dir(l2).is_dir());
    assert!(a.snapshots.unpin("c1")?);
    let gc = a.snapshots.gc(&HashSet::new())?;
    assert_eq!(gc.removed, vec![l2.clone()]);
    assert!(a.snapshots.usage()?.is_empty());

    // Gone snapshots come back on demand.
    let prepared = a.snapshots.prepare_layers(&a.store, &img_b.manifest)?;
    assert_eq!(prepared.unpacked, img_b.diff_ids);
    assert_eq!(
        fs::read_to_string(a.snapshots.layer_dir(l3).join("shared"))?,
        "3"
    );
    Ok(())
}

/// An image without layers gets one empty lower dir; a layer listed twice is listed
/// once, at its top place, and the overlay mounts; a config that does not match the
/// manifest is refused.
#[test]
fn empty_images_repeated_layers_and_mismatched_configs() -> anyhow::Result<()> {
    let a = area()?;
    let empty = put_image(&a.store, "empty", &[])?;
    let lowers = a.snapshots.prepare(&a.store, &empty.manifest)?;
    assert_eq!(lowers, vec![a.snapshots.root().join("empty")]);
    assert_eq!(fs::read_dir(&lowers[0])?.count(), 0);

    let (t1, t2) = (layer(1, 1, 1024)?, layer(2, 1, 1024)?);
    let twice: TestImage = put_image(
        &a.store,
        "twice",
        &[
            (&t1, Compression::None),
            (&t2, Compression::None),
            (&t1, Compression::Gzip),
        ],
    )?;
    let lowers = a.snapshots.prepare(&a.store, &twice.manifest)?;
    let (l1, l2) = (&twice.diff_ids[0], &twice.diff_ids[1]);
    assert_eq!(
        lowers,
        vec![a.snapshots.layer_dir(l1), a.snapshots.layer_dir(l2)]
    );
    let merged = a.tmp.path().join("merged");
    fs::create_dir(&merged)?;
    let _unmount = Unmount(merged.clone());
    mount_overlay(&lowers, None, None, &merged)?;
    assert_eq!(fs::read_to_string(merged.join("shared"))?, "1");

    let odd = put_image_with(
        &a.store,
        "odd",
        &[(&t1, Compression::None)],
        vec![l1.clone(), l2.clone()],
    )?;
    let err = a.snapshots.prepare(&a.store, &odd.manifest).err();
    assert!(
        matches!(
            err,
            Some(SnapshotError::LayerCount {
                layers: 1,
                diff_ids: 2,
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

/// The area's root is private to root: snapshots hold set-id files of any owner.
#[test]
fn the_area_is_private() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let a = area()?;
    let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(a.snapshots.root())?, 0o700);
    assert_eq!(mode(&a.snapshots.root().join("empty"))?, 0o755);
    Ok(())
}
