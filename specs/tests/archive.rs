//! OCI and Docker archives: export checked by skopeo, umoci and podman;
//! imports of what skopeo makes; hostile input refused with nothing stored.

mod common;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use common::{blob_files, gzip, layer_tar, make_image, make_image_with_layer};
use skiff_specs::archive::{
    export_docker_archive, export_oci_archive, import_archive, import_layout_dir, ArchiveError,
};
use skiff_specs::{
    media_type, Descriptor, Digest, Image, ImageIndex, ImageManifest, Platform, Store,
};

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn export_oci(store: &Store, names: &[&str], path: &Path) -> anyhow::Result<()> {
    let file = File::create(path)?;
    export_oci_archive(store, names, file)?.sync_all()?;
    Ok(())
}

fn export_docker(store: &Store, names: &[&str], path: &Path) -> anyhow::Result<()> {
    let file = File::create(path)?;
    export_docker_archive(store, names, &Platform::host(), file)?.sync_all()?;
    Ok(())
}

/// A store with one image, `example/hello:1.0`.
fn fixture() -> anyhow::Result<(tempfile::TempDir, Store, Descriptor)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let desc = make_image(&store, "example/hello:1.0", b"hello from skiff\n")?;
    Ok((dir, store, desc))
}

#[test]
fn oci_archive_is_read_by_skopeo_and_umoci() -> anyhow::Result<()> {
    let (dir, store, desc) = fixture()?;
    let archive = dir.path().join("hello-oci.tar");
    export_oci(&store, &["example/hello:1.0"], &archive)?;

    let inspect = run(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", archive.display())])
    )?;
    let v: serde_json::Value = serde_json::from_str(&inspect)?;
    assert_eq!(v["Digest"], desc.digest.to_string());
    assert_eq!(v["Env"][0], "GREETING=hi");
    // The ref name is the tag, as Docker and BuildKit write it.
    run(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}:1.0", archive.display())])
    )?;

    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout))?;
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:1.0", layout.display()))
        .arg(&bundle))?;
    assert_eq!(
        std::fs::read(bundle.join("rootfs/hello.txt"))?,
        b"hello from skiff\n"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    assert_eq!(config["process"]["args"][0], "/bin/sh");
    Ok(())
}

#[test]
fn exports_are_deterministic() -> anyhow::Result<()> {
    let (_dir, store, _) = fixture()?;
    let (_dir2, store2, _) = fixture()?;
    let mut a = Vec::new();
    let mut b = Vec::new();
    export_oci_archive(&store, &["example/hello:1.0"], &mut a)?;
    export_oci_archive(&store2, &["example/hello:1.0"], &mut b)?;
    assert_eq!(a, b);
    let mut a = Vec::new();
    let mut b = Vec::new();
    export_docker_archive(&store, &["example/hello:1.0"], &Platform::host(), &mut a)?;
    export_docker_archive(&store2, &["example/hello:1.0"], &Platform::host(), &mut b)?;
    assert_eq!(a, b);
    Ok(())
}

/// Removes a private podman store even when the test fails.
struct PodmanRoot(std::path::PathBuf);

impl PodmanRoot {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.0.join("root"))
            .arg("--runroot")
            .arg(self.0.join("runroot"))
            .arg("--tmpdir")
            .arg(self.0.join("tmp"))
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--events-backend")
            .arg("none")
            .arg("--cgroup-manager")
            .arg("cgroupfs");
        cmd
    }
}

impl Drop for PodmanRoot {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rmi", "--all", "--force"]).output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_archive_loads_in_podman() -> anyhow::Result<()> {
    let (dir, store, _) = fixture()?;
    let archive = dir.path().join("hello-docker.tar");
    export_docker(&store, &["example/hello:1.0"], &archive)?;

    let inspect = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("docker-archive:{}", archive.display()),
    ]))?;
    let config: serde_json::Value = serde_json::from_str(&inspect)?;
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");

    let podman = PodmanRoot(dir.path().join("podman"));
    let loaded = run(podman.cmd().arg("load").arg("-i").arg(&archive))?;
    assert!(loaded.contains("example/hello:1.0"), "{loaded}");
    let images = run(podman
        .cmd()
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"]))?;
    assert!(images.contains("example/hello:1.0"), "{images}");
    Ok(())
}

#[test]
fn round_trips_through_our_archives() -> anyhow::Result<()> {
    let (dir, store, desc) = fixture()?;
    let oci = dir.path().join("oci.tar");
    let docker = dir.path().join("docker.tar");
    export_oci(&store, &["example/hello:1.0"], &oci)?;
    export_docker(&store, &["example/hello:1.0"], &docker)?;

    let fresh = Store::open(dir.path().join("fresh"))?;
    let got = import_archive(&fresh, &oci, None, None)?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].name.as_deref(), Some("example/hello:1.0"));
    assert_eq!(fresh.resolve("example/hello:1.0")?, desc);
    assert_eq!(blob_files(fresh.root())?, blob_files(store.root())?);

    let fresh2 = Store::open(dir.path().join("fresh2"))?;
    let got = import_archive(
        &fresh2,
        &docker,
        Some("example/hello:1.0"),
        Some("renamed:2"),
    )?;
    assert_eq!(got[0].name.as_deref(), Some("renamed:2"));
    assert_eq!(fresh2.resolve("renamed:2")?, desc);
    Ok(())
}

/// skopeo's own docker archive (legacy layout: `<hex>.json`, `<id>.tar`)
/// imports with the same config and layers.
#[test]
fn imports_skopeo_docker_archive() -> anyhow::Result<()> {
    let (dir, store, desc) = fixture()?;
    let oci = dir.path().join("oci.tar");
    export_oci(&store, &["example/hello:1.0"], &oci)?;
    let docker = dir.path().join("skopeo-docker.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", oci.display()),
        &format!("docker-archive:{}:example/other:7", docker.display()),
    ]))?;
    let fresh = Store::open(dir.path().join("fresh"))?;
    let got = import_archive(&fresh, &docker, None, None)?;
    assert_eq!(got.len(), 1);
    // skopeo writes RepoTags fully qualified.
    assert_eq!(got[0].name.as_deref(), Some("docker.io/example/other:7"));
    let before = Image::load(&store, &desc, &Platform::host())?;
    let after = Image::load_host(&fresh, "docker.io/example/other:7")?;
    assert_eq!(after.config.rootfs, before.config.rootfs);
    assert_eq!(after.config.config, before.config.config);
    assert_eq!(after.manifest.layers.len(), 1);
    Ok(())
}

#[test]
fn imports_skopeo_layout_and_round_trips() -> anyhow::Result<()> {
    let (dir, store, desc) = fixture()?;
    let oci = dir.path().join("oci.tar");
    export_oci(&store, &["example/hello:1.0"], &oci)?;
    let layout = dir.path().join("layout");
    // An image, with layers gzipped by skopeo.
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", oci.display()),
        &format!("oci:{}:gzipped", layout.display()),
    ]))?;
    // And the image as it is, beside it.
    run(Command::new("skopeo").args([
        "copy",
        "--preserve-digests",
        "--dest-oci-accept-uncompressed-layers",
        &format!("oci-archive:{}", oci.display()),
        &format!("oci:{}:mytag", layout.display()),
    ]))?;

    let fresh = Store::open(dir.path().join("fresh"))?;
    let arg = format!("{}:mytag", layout.display());
    let (path, tag) = skiff_specs::archive::parse_layout_ref(&arg);
    let got = import_layout_dir(&fresh, &path, tag.as_deref(), Some("local/hello:1"))?;
    assert_eq!(got.len(), 1);
    let imported = fresh.resolve("local/hello:1")?;
    assert_eq!(imported.digest, desc.digest, "skopeo kept the manifest");
    // Back out again: the same archive bytes as the original store gives.
    fresh.tag("example/hello:1.0", &imported)?;
    let mut a = Vec::new();
    let mut b = Vec::new();
    export_oci_archive(&store, &["example/hello:1.0"], &mut a)?;
    export_oci_archive(&fresh, &["example/hello:1.0"], &mut b)?;
    assert_eq!(a, b);

    // An unknown tag names what the layout has.
    let err = import_layout_dir(&fresh, &path, Some("nope"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("\"nope\"") && err.contains("mytag"), "{err}");

    // Without a tag every image of the layout comes in under its ref name.
    let all = import_layout_dir(&fresh, &layout, None, None)?;
    let names: Vec<_> = all.iter().filter_map(|i| i.name.as_deref()).collect();
    assert_eq!(names, ["gzipped", "mytag"]);
    let gzipped = Image::load_host(&fresh, "gzipped")?;
    assert_eq!(
        gzipped.manifest.layers[0].media_type,
        media_type::OCI_LAYER_TAR_GZIP
    );
    let original = Image::load(&store, &desc, &Platform::host())?;
    assert_eq!(gzipped.config.rootfs, original.config.rootfs);
    assert_eq!(fresh.gc()?.removed_blobs.len(), 0);
    Ok(())
}

/// Writes a tar with the given members (name, content) in order.
fn raw_tar(path: &Path, members: &[(&str, &[u8])]) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for (name, content) in members {
        let mut header = tar::Header::new_gnu();
        // Set the name bytes directly: the tar crate refuses `..` itself.
        let field = &mut header.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    std::fs::write(path, out)?;
    Ok(())
}

/// The members of a valid OCI archive of a one-layer image.
fn oci_members() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let layer = layer_tar("f", b"data")?;
    let layer_digest = Digest::sha256_of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let config_desc = Descriptor::new(
        media_type::OCI_CONFIG,
        Digest::sha256_of(config.as_bytes()),
        config.len() as u64,
    );
    let manifest = ImageManifest::new_oci(
        config_desc.clone(),
        vec![Descriptor::new(
            media_type::OCI_LAYER_TAR,
            layer_digest.clone(),
            layer.len() as u64,
        )],
    )
    .to_json()?;
    let mut entry = Descriptor::new(
        media_type::OCI_MANIFEST,
        Digest::sha256_of(&manifest),
        manifest.len() as u64,
    );
    entry.set_annotation(media_type::ANNOTATION_REF_NAME, "evil:1");
    let index = ImageIndex {
        manifests: vec![entry.clone()],
        ..ImageIndex::default()
    }
    .to_json()?;
    Ok(vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
        (entry.digest.layout_path(), manifest),
        (config_desc.digest.layout_path(), config.into_bytes()),
        (layer_digest.layout_path(), layer),
    ])
}

fn write_members(path: &Path, members: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let borrowed: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    raw_tar(path, &borrowed)
}

fn assert_store_empty(store: &Store) -> anyhow::Result<()> {
    assert_eq!(blob_files(store.root())?, Vec::<String>::new());
    assert!(store.list()?.is_empty());
    let strays: Vec<_> = std::fs::read_dir(store.root().join("blobs/sha256"))?.collect();
    assert!(strays.is_empty(), "temp files left: {strays:?}");
    Ok(())
}

#[test]
fn hand_made_oci_archive_imports() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let archive = dir.path().join("ok.tar");
    write_members(&archive, &oci_members()?)?;
    let got = import_archive(&store, &archive, None, None)?;
    assert_eq!(got[0].name.as_deref(), Some("evil:1"));
    assert_eq!(blob_files(store.root())?.len(), 3);
    Ok(())
}

#[test]
fn hostile_archives_are_refused_and_store_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let archive = dir.path().join("hostile.tar");

    // An entry that climbs out.
    let mut members = oci_members()?;
    members.push(("../x".into(), b"escape".to_vec()));
    write_members(&archive, &members)?;
    let err = import_archive(&store, &archive, None, None).err();
    assert!(
        matches!(&err, Some(ArchiveError::UnsafeEntry { location, .. }) if location.ends_with(":../x")),
        "{err:?}"
    );
    assert!(!dir.path().join("x").exists());
    assert_store_empty(&store)?;

    // An absolute entry name.
    let mut members = oci_members()?;
    members.push(("/etc/evil".into(), b"escape".to_vec()));
    write_members(&archive, &members)?;
    assert!(matches!(
        import_archive(&store, &archive, None, None),
        Err(ArchiveError::UnsafeEntry { .. })
    ));

    // A layer whose bytes do not match its digest (same size): the manifest
    // and config before it are staged, then everything is dropped.
    let mut members = oci_members()?;
    let last = members.len() - 1;
    let layer = &mut members[last].1;
    layer[0] ^= 1;
    write_members(&archive, &members)?;
    let err = import_archive(&store, &archive, None, None).err();
    match &err {
        Some(ArchiveError::DigestMismatch { location, .. }) => {
            assert!(location.contains(&members[last].0), "{location}")
        }
        other => bail!("expected a digest mismatch, got {other:?}"),
    }
    assert_store_empty(&store)?;

    // A blob stored under a name that is not a digest is simply not found.
    let mut members = oci_members()?;
    members[last].0 = "blobs/sha256/../../../../tmp/x".into();
    write_members(&archive, &members)?;
    assert!(matches!(
        import_archive(&store, &archive, None, None),
        Err(ArchiveError::UnsafeEntry { .. })
    ));
    let mut members = oci_members()?;
    members[last].0 = "blobs/sha256/not-a-digest".into();
    write_members(&archive, &members)?;
    assert!(matches!(
        import_archive(&store, &archive, None, None),
        Err(ArchiveError::Missing { .. })
    ));

    // A descriptor digest that is not a valid digest never parses.
    let mut members = oci_members()?;
    let index = String::from_utf8(members[1].1.clone())?;
    members[1].1 = index
        .replacen("\"digest\":\"sha256:", "\"digest\":\"sha256:../../", 1)
        .into_bytes();
    write_members(&archive, &members)?;
    assert!(matches!(
        import_archive(&store, &archive, None, None),
        Err(ArchiveError::Json { .. })
    ));

    // The same member twice, with different content.
    let mut members = oci_members()?;
    let dup = members[last].clone();
    members.insert(2, (dup.0, b"shadow".to_vec()));
    write_members(&archive, &members)?;
    let err = import_archive(&store, &archive, None, None).err();
    assert!(
        matches!(&err, Some(ArchiveError::BadEntry { reason, .. }) if reason.contains("more than once")),
        "{err:?}"
    );

    // An archive cut short in the middle of the last blob.
    write_members(&archive, &oci_members()?)?;
    let full = std::fs::read(&archive)?;
    std::fs::write(&archive, &full[..full.len() - 1024 - 700])?;
    assert!(import_archive(&store, &archive, None, None).is_err());
    assert_store_empty(&store)?;

    // A hostile name annotation.
    let mut members = oci_members()?;
    let index = String::from_utf8(members[1].1.clone())?;
    members[1].1 = index.replace("evil:1", "../../evil").into_bytes();
    write_members(&archive, &members)?;
    assert!(matches!(
        import_archive(&store, &archive, None, None),
        Err(ArchiveError::Invalid { .. })
    ));
    assert_store_empty(&store)?;
    Ok(())
}

#[test]
fn hostile_docker_archives_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let archive = dir.path().join("docker.tar");
    let layer = layer_tar("f", b"data")?;
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::sha256_of(b"something else")
    );
    let manifest = br#"[{"Config":"config.json","RepoTags":["bad:1"],"Layers":["layer.tar"]}]"#;
    raw_tar(
        &archive,
        &[
            ("manifest.json", manifest),
            ("config.json", config.as_bytes()),
            ("layer.tar", &layer),
        ],
    )?;
    let err = import_archive(&store, &archive, None, None).err();
    assert!(
        matches!(&err, Some(ArchiveError::DigestMismatch { location, .. }) if location.ends_with(":layer.tar")),
        "{err:?}"
    );
    assert_store_empty(&store)?;

    // A layer member outside the archive.
    let manifest =
        br#"[{"Config":"config.json","RepoTags":["bad:1"],"Layers":["../../etc/passwd"]}]"#;
    raw_tar(
        &archive,
        &[
            ("manifest.json", manifest),
            ("config.json", config.as_bytes()),
        ],
    )?;
    assert!(matches!(
        import_archive(&store, &archive, None, None),
        Err(ArchiveError::UnsafeEntry { .. })
    ));
    assert_store_empty(&store)?;
    Ok(())
}

#[test]
fn layout_dir_blob_symlink_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let layout = dir.path().join("layout");
    let members = oci_members()?;
    for (name, content) in &members {
        let path = layout.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    let victim = &members[members.len() - 1].0;
    std::fs::remove_file(layout.join(victim))?;
    std::os::unix::fs::symlink("/etc/passwd", layout.join(victim))?;
    let err = import_layout_dir(&store, &layout, None, None).err();
    assert!(
        matches!(&err, Some(ArchiveError::BadEntry { reason, .. }) if reason.contains("symlink")),
        "{err:?}"
    );
    assert_store_empty(&store)?;
    Ok(())
}

#[test]
fn gzip_layers_and_gzipped_docker_archives() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let layer = layer_tar("zipped.txt", b"compressed layer")?;
    let diff_id = Digest::sha256_of(&layer);
    let gz = gzip(&layer)?;
    make_image_with_layer(&store, "gz:1", &gz, media_type::OCI_LAYER_TAR_GZIP, diff_id)?;
    // Wrong diff id: only a decompressing check can tell.
    make_image_with_layer(
        &store,
        "gz:bad",
        &gz,
        media_type::OCI_LAYER_TAR_GZIP,
        Digest::sha256_of(b"not the layer"),
    )?;

    for (name, ok) in [("gz:1", true), ("gz:bad", false)] {
        let mut plain = Vec::new();
        export_docker_archive(&store, &[name], &Platform::host(), &mut plain)?;
        // Without the OCI files, as older `docker save` writes it, so the
        // Docker path of the import is the one tested.
        let docker_only = strip_members(&plain, &["index.json", "oci-layout"])?;
        let archive = dir.path().join("gz.tar.gz");
        std::fs::write(&archive, gzip(&docker_only)?)?;
        let fresh = Store::open(dir.path().join(format!("fresh-{ok}")))?;
        let result = import_archive(&fresh, &archive, None, None);
        if ok {
            result?;
            let image = Image::load_host(&fresh, name)?;
            assert_eq!(
                image.manifest.layers[0].media_type,
                media_type::OCI_LAYER_TAR_GZIP
            );
            assert_eq!(image.manifest.layers[0].digest, Digest::sha256_of(&gz));
        } else {
            let err = result.err();
            assert!(
                matches!(&err, Some(ArchiveError::DigestMismatch { expected, .. }) if *expected == Digest::sha256_of(b"not the layer")),
                "{err:?}"
            );
            assert_store_empty(&fresh)?;
        }
    }
    Ok(())
}

/// A copy of a tar without the named members.
fn strip_members(tar_bytes: &[u8], drop: &[&str]) -> anyhow::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if drop.contains(&name.as_str()) {
            continue;
        }
        let mut header = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        out.append_data(&mut header, &name, &content[..])?;
    }
    Ok(out.into_inner()?)
}
