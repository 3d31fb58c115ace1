//! The image store: blobs, names, concurrency, gc, crash leftovers.

mod common;

use std::io::Read;

use common::{blob_files, digest_of, make_image};
use skiff_specs::store::StoreError;
use skiff_specs::{media_type, Descriptor, Digest, Image, Store};

#[test]
fn put_open_has() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    assert!(dir.path().join("oci-layout").is_file());
    assert!(dir.path().join("index.json").is_file());

    let digest = digest_of(b"hello");
    assert!(!store.has_blob(&digest)?);
    let (got, size) = store.put_blob(&b"hello"[..], Some(&digest), Some(5))?;
    assert_eq!((got.clone(), size), (digest.clone(), 5));
    assert!(store.has_blob(&digest)?);
    assert_eq!(
        std::fs::read(dir.path().join("blobs/sha256").join(digest.hex()))?,
        b"hello"
    );

    let desc = Descriptor::new(media_type::OCI_LAYER_TAR, digest.clone(), 5);
    let mut content = String::new();
    store
        .open_blob_verified(&desc)?
        .read_to_string(&mut content)?;
    assert_eq!(content, "hello");

    // A descriptor with the wrong size is refused on open.
    let wrong = Descriptor::new(media_type::OCI_LAYER_TAR, digest.clone(), 4);
    assert!(matches!(
        store.open_blob(&wrong),
        Err(StoreError::SizeMismatch { .. })
    ));
    // A missing blob names its digest.
    let missing = Descriptor::new(media_type::OCI_LAYER_TAR, digest_of(b"nope"), 4);
    let err = store.open_blob(&missing).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains(&digest_of(b"nope").to_string())));

    // Without an expected digest the store computes it.
    let (d2, _) = store.put_blob(&b"other"[..], None, None)?;
    assert_eq!(d2, digest_of(b"other"));
    Ok(())
}

#[test]
fn present_blob_is_not_rewritten() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let digest = digest_of(b"same");
    store.put_blob(&b"same"[..], Some(&digest), None)?;
    let path = store.blob_path(&digest);
    let before = std::fs::metadata(&path)?;
    // The reader is not consulted when the expected blob is present.
    struct Boom;
    impl Read for Boom {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("read a present blob"))
        }
    }
    store.put_blob(Boom, Some(&digest), Some(4))?;
    // Without a digest it is read, hashed, and the temp file dropped.
    store.put_blob(&b"same"[..], None, None)?;
    let after = std::fs::metadata(&path)?;
    use std::os::unix::fs::MetadataExt;
    assert_eq!(before.ino(), after.ino());
    assert_eq!(
        blob_files(dir.path())?,
        vec![format!("sha256/{}", digest.hex())]
    );
    Ok(())
}

#[test]
fn mismatch_stores_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let digest = digest_of(b"expected");
    let err = store.put_blob(&b"tampered"[..], Some(&digest), None).err();
    match err {
        Some(StoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, digest);
            assert_eq!(actual, digest_of(b"tampered"));
        }
        other => anyhow::bail!("expected a digest mismatch, got {other:?}"),
    }
    let err = store
        .put_blob(&b"expected"[..], Some(&digest), Some(7))
        .err();
    assert!(
        matches!(err, Some(StoreError::SizeMismatch { .. })),
        "{err:?}"
    );
    // A reader longer than the size is cut and refused, not stored.
    let err = store.put_blob(&b"expected!!"[..], None, Some(8)).err();
    assert!(
        matches!(err, Some(StoreError::SizeMismatch { .. })),
        "{err:?}"
    );
    assert!(!store.has_blob(&digest)?);
    assert_eq!(blob_files(dir.path())?, Vec::<String>::new());
    Ok(())
}

#[test]
fn blob_writer_streams_and_verifies() -> anyhow::Result<()> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut w = store.blob_writer(skiff_specs::Algorithm::Sha256)?;
    w.write_all(b"layer ")?;
    w.write_all(b"bytes")?;
    assert_eq!(w.len(), 11);
    let staged = w.finish(None, Some(11))?;
    assert_eq!(staged.digest(), &digest_of(b"layer bytes"));
    // Staged content is not visible until committed.
    assert!(!store.has_blob(&digest_of(b"layer bytes"))?);
    staged.commit()?;
    assert!(store.has_blob(&digest_of(b"layer bytes"))?);

    // Dropped writers and failed checks leave nothing behind.
    let mut w = store.blob_writer(skiff_specs::Algorithm::Sha256)?;
    w.write_all(b"abandoned")?;
    drop(w);
    let mut w = store.blob_writer(skiff_specs::Algorithm::Sha256)?;
    w.write_all(b"wrong")?;
    assert!(w.finish(Some(&digest_of(b"right")), None).is_err());
    assert_eq!(
        blob_files(dir.path())?,
        vec![format!("sha256/{}", digest_of(b"layer bytes").hex())]
    );
    Ok(())
}

#[test]
fn sha512_blobs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let digest = Digest::compute(skiff_specs::Algorithm::Sha512, b"x");
    store.put_blob(&b"x"[..], Some(&digest), Some(1))?;
    assert!(dir.path().join("blobs/sha512").join(digest.hex()).is_file());
    Ok(())
}

#[test]
fn tags_resolve_list_remove() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let a = make_image(&store, "example/a:1", b"a")?;
    let b = make_image(&store, "example/b:latest", b"b")?;
    assert_eq!(store.resolve("example/a:1")?, a);
    assert_eq!(
        store.resolve("example/b")?,
        b,
        "name without tag is :latest"
    );
    assert_eq!(store.resolve(&a.digest.to_string())?, a);
    assert!(matches!(
        store.resolve("example/a"),
        Err(StoreError::ImageNotFound { .. })
    ));

    // Retagging moves the name and returns the old target.
    assert_eq!(store.tag("example/a:1", &b)?, Some(a.clone()));
    store.tag("example/a:old", &a)?;
    let names: Vec<_> = store.list()?.into_iter().filter_map(|i| i.name).collect();
    assert_eq!(names, ["example/b:latest", "example/a:1", "example/a:old"]);

    // Index.json stays an OCI index that names with ref.name.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json"))?)?;
    assert_eq!(
        index["manifests"][2]["annotations"][media_type::ANNOTATION_REF_NAME],
        "example/a:old"
    );

    assert_eq!(store.untag("example/a:old")?, a);
    assert!(store.untag("example/a:old").is_err());
    // Removal by digest drops every name of it.
    let removed = store.remove(&b.digest.to_string())?;
    assert_eq!(removed.len(), 2);
    assert!(store.list()?.is_empty());

    // Names are validated, and tagging needs the manifest present.
    assert!(matches!(
        store.tag("../evil", &a),
        Err(StoreError::InvalidName { .. })
    ));
    let ghost = Descriptor::new(media_type::OCI_MANIFEST, digest_of(b"ghost"), 5);
    assert!(matches!(
        store.tag("ghost", &ghost),
        Err(StoreError::BlobNotFound { .. })
    ));
    Ok(())
}

#[test]
fn loads_image_for_host() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let desc = make_image(&store, "img", b"content")?;
    let image = Image::load_host(&store, "img")?;
    assert_eq!(image.descriptor, desc);
    assert_eq!(image.manifest.layers.len(), 1);
    assert_eq!(
        image.config.rootfs.diff_ids[0],
        image.manifest.layers[0].digest
    );
    Ok(())
}

/// Many threads tag and untag at once; every tag written survives.
#[test]
fn concurrent_tags_in_threads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let desc = make_image(&store, "base", b"x")?;
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                let desc = desc.clone();
                s.spawn(move || -> anyhow::Result<()> {
                    for i in 0..25 {
                        store.tag(&format!("t{t}/img:{i}"), &desc)?;
                        store.tag(&format!("t{t}/tmp"), &desc)?;
                        store.untag(&format!("t{t}/tmp"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("tagging thread panicked"))??;
        }
        Ok(())
    })?;
    let names = store.list()?;
    assert_eq!(names.len(), 1 + 4 * 25);
    Ok(())
}

/// Two processes tag the same store at once; no tag is lost.
#[test]
fn concurrent_tags_in_processes() -> anyhow::Result<()> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let desc = make_image(&store, "base", b"x")?;
    let mut children = Vec::new();
    for p in 0..2 {
        // SAFETY: the child only uses the store (file I/O and flock) and then
        // leaves with _exit, never returning into the test harness.
        match unsafe { fork() }? {
            ForkResult::Child => {
                let mut code = 0;
                for i in 0..40 {
                    if store.tag(&format!("p{p}:{i}"), &desc).is_err() {
                        code = 1;
                    }
                }
                // SAFETY: _exit ends the forked child without running the
                // parent's atexit handlers or destructors.
                unsafe { nix::libc::_exit(code) };
            }
            ForkResult::Parent { child } => children.push(child),
        }
    }
    for child in children {
        assert_eq!(waitpid(child, None)?, WaitStatus::Exited(child, 0));
    }
    let mut names: Vec<_> = store.list()?.into_iter().filter_map(|i| i.name).collect();
    names.sort();
    assert_eq!(names.len(), 81, "{names:?}");
    Ok(())
}

#[test]
fn gc_keeps_referenced_and_removes_the_rest() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let keep = make_image(&store, "keep", b"keep")?;
    let drop = make_image(&store, "drop", b"drop")?;
    let (loose, _) = store.put_blob(&b"loose"[..], None, None)?;
    // What a killed writer leaves behind.
    std::fs::write(dir.path().join("blobs/sha256/.tmp-killed"), b"partial")?;
    std::fs::write(dir.path().join(".tmp-index"), b"{")?;
    std::fs::write(dir.path().join("blobs/sha256/README"), b"not a blob")?;

    // Leftovers do not disturb normal use.
    let reopened = Store::open(dir.path())?;
    assert_eq!(reopened.resolve("keep")?, keep);

    store.untag("drop")?;
    let report = store.gc()?;
    let kept = store.reachable(&keep)?;
    assert_eq!(kept.len(), 3);
    for d in &kept {
        assert!(store.has_blob(&d.digest)?, "gc removed {}", d.digest);
    }
    assert!(!store.has_blob(&drop.digest)?);
    assert!(!store.has_blob(&loose)?);
    assert_eq!(report.removed_blobs.len(), 4, "{report:?}");
    assert_eq!(report.removed_temp_files, 2);
    assert!(dir.path().join("blobs/sha256/README").exists());
    assert!(!dir.path().join(".tmp-index").exists());
    assert_eq!(Image::load_host(&store, "keep")?.descriptor, keep);

    // Nothing left to collect the second time.
    assert_eq!(store.gc()?.removed_blobs, Vec::<Digest>::new());
    Ok(())
}

#[test]
fn gc_refuses_when_a_referenced_manifest_is_corrupt() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let desc = make_image(&store, "img", b"x")?;
    let (loose, _) = store.put_blob(&b"loose"[..], None, None)?;
    std::fs::write(
        store.blob_path(&desc.digest),
        vec![b'{'; desc.size as usize],
    )?;
    let err = store.gc().err();
    assert!(
        matches!(err, Some(StoreError::DigestMismatch { .. })),
        "{err:?}"
    );
    assert!(store.has_blob(&loose)?, "gc deleted after an error");
    Ok(())
}

/// A lease holds gc off until dropped.
#[test]
fn lease_blocks_gc() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let lease = store.lease()?;
    let (loose, _) = store.put_blob(&b"loose"[..], None, None)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let gc_store = store.clone();
    let handle = std::thread::spawn(move || {
        let result = gc_store.gc();
        let _ = tx.send(());
        result
    });
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(300))
        .is_err());
    assert!(store.has_blob(&loose)?);
    drop(lease);
    rx.recv_timeout(std::time::Duration::from_secs(10))?;
    let report = handle
        .join()
        .map_err(|_| anyhow::anyhow!("gc thread panicked"))??;
    assert_eq!(report.removed_blobs, vec![loose]);
    Ok(())
}

#[test]
fn corrupt_index_is_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    std::fs::write(dir.path().join("index.json"), b"{not json")?;
    let err = store
        .list()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("index.json") && err.contains("invalid image index"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"9"}"#,
    )?;
    let err = Store::open(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("oci-layout") && err.contains("imageLayoutVersion"),
        "{err}"
    );
    Ok(())
}

/// A writer killed at random points leaves a store the next process uses:
/// every named image is complete, and gc cleans what the writer left. The
/// writer reports each tag through a pipe; it is killed only after its first
/// one, so the store always holds images (whatever the machine's load), and
/// then at a random moment of the writes that follow.
#[test]
fn killed_writer_leaves_a_usable_store() -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, pipe, ForkResult};

    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    // A small xorshift seeded from the clock: where the kill lands varies
    // between runs; the checks never depend on it.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos() as u64
        | 1;
    let mut next_random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..6u64 {
        let (reader, writer) = pipe()?;
        // SAFETY: the child only does file I/O on the store and never
        // returns into the test harness (it is killed or calls _exit).
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(reader);
                let mut progress = std::fs::File::from(writer);
                let big = vec![round as u8; 3 << 20];
                for i in 0.. {
                    let mut content = big.clone();
                    content.extend_from_slice(format!("{round}-{i}").as_bytes());
                    let tagged = make_image(&store, &format!("r{round}:{i}"), &content);
                    if tagged.is_err() || progress.write_all(b"t").is_err() {
                        // SAFETY: ends the forked child at once.
                        unsafe { nix::libc::_exit(1) };
                    }
                }
                // SAFETY: as above.
                unsafe { nix::libc::_exit(0) };
            }
            ForkResult::Parent { child } => {
                drop(writer);
                let mut first = [0u8; 1];
                let got = nix::unistd::read(reader.as_raw_fd(), &mut first)?;
                if got == 0 {
                    let _ = waitpid(child, None);
                    anyhow::bail!("round {round}: the writer ended before its first tag");
                }
                // Somewhere in the next few writes (each takes milliseconds).
                let pause = next_random() % 30_000;
                std::thread::sleep(std::time::Duration::from_micros(pause));
                kill(child, Signal::SIGKILL)?;
                waitpid(child, None)?;
            }
        }
        let next = Store::open(dir.path())?;
        for image in next.list()? {
            for d in next.reachable(&image.descriptor)? {
                let mut sink = Vec::new();
                next.open_blob_verified(&d)?.read_to_end(&mut sink)?;
            }
        }
    }
    assert!(!store.list()?.is_empty(), "no image was tagged");
    store.gc()?;
    let strays: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    Ok(())
}
