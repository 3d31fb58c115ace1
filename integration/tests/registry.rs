//! skiff-build against a real registry (Debian's docker-registry, distribution 2.8) on a
//! loopback port, with skopeo as the reference client: pull, push, a build FROM a pulled
//! image, basic auth, an interrupted push.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use skiff_integration::bin;
use skiff_integration::image::busybox_archive;
use skiff_integration::registry::{skopeo, Registry};
use skiff_specs::archive::import_archive;
use skiff_specs::registry;
use skiff_specs::{Platform, Store};
use tempfile::TempDir;

/// A test's own directories: stores, docker config, build context; removed on drop.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-reg-test-")
            .tempdir()?;
        fs::create_dir_all(dir.path().join("docker-config"))?;
        Ok(Fixture { dir })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// skiff-build with a private docker config (never the host's credentials).
    fn build_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("skiff-build"));
        c.args(args)
            .env("DOCKER_CONFIG", self.path("docker-config"));
        c
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        self.build_cmd(args)
            .output()
            .with_context(|| format!("cannot run skiff-build {args:?}"))
    }

    /// skiff-build ARGS, which must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "skiff-build {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// skiff-build ARGS, which must fail; returns stderr.
    fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!("skiff-build {args:?} succeeded, expected a failure");
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn store(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// skopeo copies the test's busybox archive to `dest` (a docker:// reference).
fn seed(dest: &str) -> Result<()> {
    let archive = busybox_archive()?;
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        dest,
    ])?;
    Ok(())
}

fn inspect_raw(reference: &str) -> Result<Value> {
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", reference])?;
    Ok(serde_json::from_str(&raw)?)
}

fn inspect_digest(reference: &str) -> Result<String> {
    let v: Value = serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", reference])?)?;
    Ok(v["Digest"].as_str().unwrap_or_default().to_owned())
}

/// The manifest digest of a store name, as `image inspect` shows it.
fn stored_digest(f: &Fixture, store: &str, name: &str) -> Result<String> {
    let out = f.ok(&["image", "inspect", "--store", store, name])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v["Descriptor"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter_map(|l| l["digest"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pull_what_skopeo_pushed_then_push_and_skopeo_reads_it() -> Result<()> {
    let reg = Registry::start()?;
    let f = Fixture::new()?;
    let host = reg.host();
    let insecure = ["--insecure-registry", host];
    seed(&format!("docker://{host}/seed/busybox:1"))?;
    let seeded = inspect_digest(&format!("docker://{host}/seed/busybox:1"))?;

    let store = f.store("store");
    let mut args = vec!["image", "pull", "--store", &store];
    args.extend(insecure);
    let name = format!("{host}/seed/busybox:1");
    args.push(&name);
    let out = f.ok(&args)?;
    assert_eq!(out.trim(), format!("{name}@{seeded}"));
    assert_eq!(stored_digest(&f, &store, &name)?, seeded);

    // Push to another repository: the blobs are mounted, the digest is the same.
    let target = format!("{host}/copy/busybox:2");
    let mut args = vec!["image", "push", "--store", &store];
    args.extend(insecure);
    args.extend([name.as_str(), target.as_str()]);
    let out = f.run(&args)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 mounted"), "{stderr}");
    assert_eq!(inspect_digest(&format!("docker://{target}"))?, seeded);

    // A second push finds everything there.
    let out = f.run(&args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0 blobs uploaded, 0 mounted, 2 already there"),
        "{stderr}"
    );
    // The store names the image by where it went.
    let list = f.ok(&["image", "ls", "--store", &store])?;
    assert!(list.contains(&target), "{list}");

    // skopeo copies what we pushed; a fresh store pulls it with the same content.
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("oci:{}:x", f.path("skopeo-layout").display()),
    ])?;
    let fresh = f.store("fresh");
    let mut args = vec!["image", "pull", "--store", &fresh];
    args.extend(insecure);
    args.push(&target);
    f.ok(&args)?;
    assert_eq!(stored_digest(&f, &fresh, &target)?, seeded);
    Ok(())
}

#[test]
fn build_from_a_registry_image_and_push_the_result() -> Result<()> {
    let reg = Registry::start()?;
    let f = Fixture::new()?;
    let host = reg.host();
    seed(&format!("docker://{host}/base/busybox:latest"))?;
    let base = inspect_raw(&format!("docker://{host}/base/busybox:latest"))?;

    let ctx = f.path("ctx");
    fs::create_dir_all(&ctx)?;
    fs::write(ctx.join("hello.txt"), "hello from the registry test\n")?;
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {host}/base/busybox\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"
        ),
    )?;
    let store = f.store("store");
    let target = format!("{host}/built/app:v1");
    let ctx_s = ctx.display().to_string();
    let out = f.ok(&[
        "--store",
        &store,
        "--insecure-registry",
        host,
        "--progress",
        "plain",
        "-t",
        &target,
        "--push",
        &ctx_s,
    ])?;
    let built = out.trim().to_owned();
    assert_eq!(inspect_digest(&format!("docker://{target}"))?, built);
    let pushed = inspect_raw(&format!("docker://{target}"))?;
    let layers = layer_digests(&pushed);
    assert_eq!(layers.len(), 2, "{pushed}");
    assert_eq!(layers[0], layer_digests(&base)[0]);
    // The built layer went up as the store has it: zstd.
    assert_eq!(
        pushed["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // --output type=registry,name=... pushes too; a failing push fails the command.
    let other = format!("{host}/built/other:v2");
    f.ok(&[
        "--store",
        &store,
        "--insecure-registry",
        host,
        "--output",
        &format!("type=registry,name={other}"),
        &ctx_s,
    ])?;
    assert_eq!(inspect_digest(&format!("docker://{other}"))?, built);
    let err = f.fails(&["--store", &store, "-t", &target, "--push", &ctx_s])?;
    assert!(err.contains(&format!("https://{host}/v2/")), "{err}");

    // gzip layers go up as gzip, with their media type.
    let gz = format!("{host}/built/gz:v1");
    f.ok(&[
        "--store",
        &store,
        "--insecure-registry",
        host,
        "--compression",
        "gzip",
        "-t",
        &gz,
        "--push",
        &ctx_s,
    ])?;
    let pushed = inspect_raw(&format!("docker://{gz}"))?;
    assert_eq!(
        pushed["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // FROM by digest, into a store that has nothing yet.
    let digest = inspect_digest(&format!("docker://{host}/base/busybox:latest"))?;
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {host}/base/busybox@{digest}\nCOPY hello.txt /again.txt\n"),
    )?;
    let fresh = f.store("fresh");
    f.ok(&["--store", &fresh, "--insecure-registry", host, &ctx_s])?;
    let list = f.ok(&["image", "ls", "--store", &fresh])?;
    assert!(
        list.contains(&format!("{host}/base/busybox@{digest}")),
        "{list}"
    );
    Ok(())
}

#[test]
fn credential_helper_supplies_the_password() -> Result<()> {
    let reg = Registry::start_with_htpasswd("helped", "pa55")?;
    let f = Fixture::new()?;
    let host = reg.host();
    let bin_dir = f.path("bin");
    fs::create_dir_all(&bin_dir)?;
    let helper = bin_dir.join("docker-credential-skifftest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n\
             [ \"$server\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
             echo '{{\"ServerURL\":\"{host}\",\"Username\":\"helped\",\"Secret\":\"pa55\"}}'\n"
        ),
    )?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755))?;
    fs::write(
        f.path("docker-config/config.json"),
        r#"{"auths": {}, "credsStore": "skifftest"}"#,
    )?;
    let store = loaded_store(&f, "store")?;
    let target = format!("{host}/helper/busybox:1");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = f
        .build_cmd(&push_args(
            &store,
            host,
            skiff_integration::image::IMAGE_REF,
            &target,
        ))
        .env("PATH", &path)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the helper on PATH the error says which program could not run.
    let err = f.fails(&pull_args(&store, host, &target))?;
    assert!(err.contains("docker-credential-skifftest"), "{err}");
    Ok(())
}

#[test]
fn basic_auth_with_htpasswd() -> Result<()> {
    let reg = Registry::start_with_htpasswd("tester", "s3cret")?;
    let f = Fixture::new()?;
    let host = reg.host();
    let store = f.store("store");
    let archive = busybox_archive()?.display().to_string();
    f.ok(&["image", "load", "--store", &store, "-i", &archive])?;
    let target = format!("{host}/auth/busybox:1");
    let push = push_args(&store, host, skiff_integration::image::IMAGE_REF, &target);

    let err = f.fails(&push)?;
    assert!(err.contains("authentication required"), "{err}");

    let login = |password: &str| -> Result<Output> {
        let mut c = f.build_cmd(&[
            "login",
            host,
            "-u",
            "tester",
            "--password-stdin",
            "--insecure-registry",
            host,
        ]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{password}")?;
        }
        Ok(child.wait_with_output()?)
    };
    let out = login("wrong")?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(!f.path("docker-config/config.json").exists());

    let out = login("s3cret")?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&fs::read(f.path("docker-config/config.json"))?)?;
    assert!(config["auths"][host]["auth"].is_string(), "{config}");

    f.ok(&push)?;
    let fresh = f.store("fresh");
    f.ok(&pull_args(&fresh, host, &target))?;

    // After a logout the registry wants credentials again.
    f.ok(&["logout", host])?;
    let config: Value = serde_json::from_slice(&fs::read(f.path("docker-config/config.json"))?)?;
    assert!(config["auths"].get(host).is_none(), "{config}");
    let err = f.fails(&push)?;
    assert!(err.contains("authentication required"), "{err}");
    Ok(())
}

/// `image push` of `image` in `store` to `target` on the plain-HTTP registry `host`.
fn push_args<'a>(store: &'a str, host: &'a str, image: &'a str, target: &'a str) -> [&'a str; 8] {
    [
        "image",
        "push",
        "--store",
        store,
        "--insecure-registry",
        host,
        image,
        target,
    ]
}

/// `image pull` of `name` from the plain-HTTP registry `host` into `store`.
fn pull_args<'a>(store: &'a str, host: &'a str, name: &'a str) -> [&'a str; 7] {
    [
        "image",
        "pull",
        "--store",
        store,
        "--insecure-registry",
        host,
        name,
    ]
}

/// Loads the busybox image into a store at `dir` and returns the store's path.
fn loaded_store(f: &Fixture, dir: &str) -> Result<String> {
    let store = f.store(dir);
    let archive = busybox_archive()?.display().to_string();
    f.ok(&["image", "load", "--store", &store, "-i", &archive])?;
    Ok(store)
}

#[test]
fn image_commands_list_tag_history_save_remove() -> Result<()> {
    let f = Fixture::new()?;
    let store = loaded_store(&f, "store")?;
    let name = skiff_integration::image::IMAGE_REF;
    f.ok(&["image", "tag", "--store", &store, name, "copy:v1"])?;
    let list = f.ok(&["image", "ls", "--store", &store])?;
    assert!(list.contains(name) && list.contains("copy:v1"), "{list}");
    let history = f.ok(&["image", "history", "--store", &store, "copy:v1"])?;
    assert!(history.contains("skiff integration tests"), "{history}");
    let saved = f.path("saved.tar");
    let saved_s = saved.display().to_string();
    f.ok(&[
        "image", "save", "--store", &store, "-o", &saved_s, "copy:v1",
    ])?;
    skopeo(&["inspect", &format!("oci-archive:{saved_s}")])?;
    f.ok(&["image", "rm", "--store", &store, "copy:v1"])?;
    let list = f.ok(&["image", "ls", "--store", &store])?;
    assert!(!list.contains("copy:v1"), "{list}");
    let err = f.fails(&["image", "rm", "--store", &store, "copy:v1"])?;
    assert!(err.contains("copy:v1"), "{err}");

    // A docker archive of it loads back into an empty store under its name.
    let docker = f.path("docker.tar").display().to_string();
    f.ok(&[
        "image", "save", "--store", &store, "--format", "docker", "-o", &docker, name,
    ])?;
    skopeo(&["inspect", &format!("docker-archive:{docker}")])?;
    let other = f.store("other");
    let out = f.ok(&["image", "load", "--store", &other, "-i", &docker])?;
    assert!(out.contains(name), "{out}");

    // Prune keeps named images and drops what nothing names.
    f.ok(&["image", "rm", "--store", &store, name])?;
    let out = f.ok(&["image", "prune", "--store", &store])?;
    assert!(out.contains("3 blobs"), "{out}");
    let out = f.ok(&["image", "prune", "--store", &other])?;
    assert!(out.contains("0 blobs"), "{out}");
    Ok(())
}

/// A TCP proxy in front of the registry that, while `cutting` is set, cuts a connection
/// once more than `limit` bytes went upstream on it (an upload broken off mid-layer).
struct CuttingProxy {
    addr: String,
    cutting: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    patches: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(upstream: &str, limit: usize, once: bool) -> Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let proxy = CuttingProxy {
            addr: listener.local_addr()?.to_string(),
            cutting: Arc::new(AtomicBool::new(true)),
            cuts: Arc::new(AtomicUsize::new(0)),
            patches: Arc::new(AtomicUsize::new(0)),
        };
        let (cutting, cuts, patches) = (
            proxy.cutting.clone(),
            proxy.cuts.clone(),
            proxy.patches.clone(),
        );
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (cutting, cuts, patches) = (cutting.clone(), cuts.clone(), patches.clone());
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut &server2, &mut &client2);
                    let _ = client2.shutdown(Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut sent = 0;
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match (&client).read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        patches.fetch_add(
                            buf[..n].windows(10).filter(|w| w == b"PATCH /v2/").count(),
                            Ordering::Relaxed,
                        );
                        sent += n;
                        if sent > limit && cutting.load(Ordering::Relaxed) {
                            cuts.fetch_add(1, Ordering::Relaxed);
                            if once {
                                cutting.store(false, Ordering::Relaxed);
                            }
                            break;
                        }
                        if (&server).write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(Shutdown::Both);
                    let _ = client.shutdown(Shutdown::Both);
                });
            }
        });
        Ok(proxy)
    }
}

fn library_client(f: &Fixture, insecure: &str) -> registry::Client {
    registry::Client::new(registry::ClientOptions {
        insecure: vec![insecure.to_owned()],
        parallel: 1,
        chunk_size: 256 << 10,
        docker_config: Some(f.path("docker-config/config.json")),
        backoff: Duration::from_millis(10),
        ..registry::ClientOptions::default()
    })
}

#[test]
fn chunked_push_cut_midway_restarts_and_a_failed_push_reruns() -> Result<()> {
    let reg = Registry::start()?;
    let f = Fixture::new()?;
    let store = Store::open(f.path("store"))?;
    import_archive(&store, &busybox_archive()?, None, None)?;
    let image = store.resolve(skiff_integration::image::IMAGE_REF)?;

    // Cut once: the upload starts again in the same run, in 256 KiB PATCH chunks.
    let proxy = CuttingProxy::start(reg.host(), 400_000, true)?;
    let client = library_client(&f, &proxy.addr);
    let target = registry::Reference::parse(&format!("{}/chunked/busybox:1", proxy.addr))?;
    let pushed = registry::push(&client, &store, &image, &target)?;
    assert_eq!(proxy.cuts.load(Ordering::Relaxed), 1);
    assert!(proxy.patches.load(Ordering::Relaxed) >= 4);
    assert_eq!(pushed.digest.as_ref(), Some(&image.digest));
    assert_eq!(
        inspect_digest(&format!("docker://{}/chunked/busybox:1", reg.host()))?,
        image.digest.to_string()
    );

    // Cut every time: the push fails and names no manifest; the rerun completes.
    let proxy = CuttingProxy::start(reg.host(), 400_000, false)?;
    let client = library_client(&f, &proxy.addr);
    let target = registry::Reference::parse(&format!("{}/rerun/busybox:1", proxy.addr))?;
    let err = registry::push(&client, &store, &image, &target);
    assert!(err.is_err(), "{err:?}");
    assert!(skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/rerun/busybox:1", reg.host())
    ])
    .is_err());
    proxy.cutting.store(false, Ordering::Relaxed);
    let pushed = registry::push(&client, &store, &image, &target)?;
    assert_eq!(pushed.digest.as_ref(), Some(&image.digest));

    // What we pushed pulls back, verified, into a fresh store.
    let fresh = Store::open(f.path("fresh"))?;
    let pulled = registry::pull(
        &library_client(&f, reg.host()),
        &fresh,
        &registry::Reference::parse(&format!("{}/rerun/busybox:1", reg.host()))?,
        &Platform::host(),
    )?;
    assert_eq!(pulled.manifest.digest, image.digest);
    Ok(())
}

#[test]
fn bearer_token_flow_with_distribution_token_auth() -> Result<()> {
    let reg = Registry::start_with_token_service("tok-user", "tok-pass")?;
    let f = Fixture::new()?;
    let host = reg.host();
    let store = loaded_store(&f, "store")?;
    let target = format!("{host}/tokens/busybox:1");
    let push = push_args(&store, host, skiff_integration::image::IMAGE_REF, &target);
    let err = f.fails(&push)?;
    assert!(err.contains("requires credentials"), "{err}");
    fs::write(
        f.path("docker-config/config.json"),
        format!(r#"{{"auths": {{"{host}": {{"username": "tok-user", "password": "tok-pass"}}}}}}"#),
    )?;
    f.ok(&push)?;
    let fresh = f.store("fresh");
    f.ok(&pull_args(&fresh, host, &target))?;
    Ok(())
}

#[test]
fn an_index_is_pushed_with_its_manifests_and_pulls_for_the_host() -> Result<()> {
    let reg = Registry::start()?;
    let f = Fixture::new()?;
    let store = Store::open(f.path("store"))?;
    import_archive(&store, &busybox_archive()?, None, None)?;
    let mut manifest = store.resolve(skiff_integration::image::IMAGE_REF)?;
    manifest.platform = Some(Platform::host());
    let index = skiff_specs::ImageIndex {
        manifests: vec![manifest.clone()],
        ..skiff_specs::ImageIndex::default()
    };
    let index = store.put_json(skiff_specs::media_type::OCI_INDEX, &index)?;
    let client = library_client(&f, reg.host());
    let target = registry::Reference::parse(&format!("{}/multi/busybox:1", reg.host()))?;
    let pushed = registry::push(&client, &store, &index, &target)?;
    assert_eq!(pushed.digest.as_ref(), Some(&index.digest));
    let raw = inspect_raw(&format!("docker://{}/multi/busybox:1", reg.host()))?;
    assert_eq!(raw["mediaType"], skiff_specs::media_type::OCI_INDEX);

    let fresh = Store::open(f.path("fresh"))?;
    let pulled = registry::pull(&client, &fresh, &target, &Platform::host())?;
    assert_eq!(pulled.manifest.digest, manifest.digest);
    Ok(())
}

#[test]
fn https_registries_are_checked_against_the_trusted_roots() -> Result<()> {
    let reg = Registry::start_tls()?;
    let f = Fixture::new()?;
    let host = reg.host();
    let cert = reg.tls_cert();
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-cert-dir",
        &f.path("no-certs").display().to_string(),
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", busybox_archive()?.display()),
        &format!("docker://{host}/tls/busybox:1"),
    ])?;
    let store = f.store("store");
    let name = format!("{host}/tls/busybox:1");
    // Not trusted: a TLS error naming the URL, and nothing stored.
    let err = f.fails(&["image", "pull", "--store", &store, &name])?;
    assert!(
        err.contains(&format!("https://{host}/v2/")) && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    // Trusted through the system's trust store settings (SSL_CERT_FILE).
    let out = f
        .build_cmd(&["image", "pull", "--store", &store, &name])
        .env("SSL_CERT_FILE", &cert)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
