//! What the builder's end-to-end test files share: the busybox base image they build on,
//! reading the plain progress output, and removing mounts a failed build left.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::Result;
use skiff_integration::make_rootfs;
use skiff_specs::media_type::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use skiff_specs::{
    ContainerConfig, Descriptor, ImageConfig, ImageManifest, Platform, RootFs, Store,
};

/// A one-layer busybox image (CMD sh) as an OCI layout at `layout`, tagged `latest`, for
/// `--build-context busybox=oci-layout://LAYOUT:latest`. `scratch` is a work dir.
pub fn make_busybox_layout(layout: &Path, scratch: &Path) -> Result<()> {
    let rootfs = scratch.join("busybox-rootfs");
    make_rootfs(&rootfs)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &rootfs)?;
    let layer = builder.into_inner()?;
    fs::remove_dir_all(&rootfs)?;
    let store = Store::open(layout)?;
    let (digest, size) = store.put_blob(&layer[..], None, None)?;
    let host = Platform::host();
    let config = ImageConfig {
        architecture: host.architecture,
        os: host.os,
        config: Some(ContainerConfig {
            env: Some(vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            ..ContainerConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![digest.clone()],
        },
        ..ImageConfig::default()
    };
    let config = store.put_json(OCI_CONFIG, &config)?;
    let layer = Descriptor::new(OCI_LAYER_TAR, digest, size);
    let manifest = store.put_json(OCI_MANIFEST, &ImageManifest::new_oci(config, vec![layer]))?;
    store.tag("latest", &manifest)?;
    Ok(())
}

/// The instructions of the steps plain `progress` shows with `outcome` (`CACHED`, `DONE`).
pub fn steps_with(progress: &str, outcome: &str) -> Vec<String> {
    let mut names = HashMap::new();
    let mut out = Vec::new();
    for line in progress.lines() {
        let Some((num, rest)) = line.split_once(' ') else {
            continue;
        };
        if let Some(text) = rest.strip_prefix('[') {
            if let Some((_, inst)) = text.split_once("] ") {
                names.insert(num.to_owned(), inst.to_owned());
            }
        } else if rest == outcome || rest.starts_with(&format!("{outcome} ")) {
            if let Some(inst) = names.get(num) {
                out.push(inst.clone());
            }
        }
    }
    out
}

/// Detaches every mount at or below `dir`, deepest first (what a failed or killed build
/// left: overlay snapshots, its scratch tmpfs).
pub fn unmount_below(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}
