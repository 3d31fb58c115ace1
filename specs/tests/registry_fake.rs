//! The registry client against small registries the tests run on loopback, for what a real
//! registry will not do on demand: demand a bearer token from its own token service,
//! serve a corrupted blob, cut a body off midway, fail with 503.

#![cfg(feature = "http")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use skiff_specs::registry::{self, Client, ClientOptions, Credentials, Reference, RegistryError};
use skiff_specs::{media_type, Descriptor, Digest, ImageManifest, Platform, Store};

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A reply: status, headers, body; `cut_after` sends only that much of the body (with the
/// full Content-Length) and closes the connection.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    cut_after: Option<usize>,
}

fn reply(status: u16, body: &[u8]) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_vec(),
        cut_after: None,
    }
}

impl Reply {
    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// Serves `handler` on a loopback port until the process ends; returns `127.0.0.1:PORT`
/// and the log of requests.
fn serve(handler: Arc<Handler>) -> Result<(String, Arc<Mutex<Vec<Request>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let _ = connection(stream, &*handler, &seen);
            });
        }
    });
    Ok((addr, log))
}

fn connection(
    stream: TcpStream,
    handler: &Handler,
    seen: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let req = Request {
            method,
            path,
            headers,
        };
        if let Ok(mut log) = seen.lock() {
            log.push(req.clone());
        }
        let r = handler(&req);
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            r.status,
            r.body.len()
        );
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if req.method == "HEAD" {
            continue;
        }
        match r.cut_after {
            Some(n) => {
                out.write_all(&r.body[..n.min(r.body.len())])?;
                out.flush()?;
                return out.shutdown(Shutdown::Both);
            }
            None => out.write_all(&r.body)?,
        }
    }
}

/// A one-layer image: (manifest bytes, config bytes, layer bytes).
struct FakeImage {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

impl FakeImage {
    fn new() -> Result<FakeImage> {
        // Not compressible into nothing, big enough to be cut in the middle.
        let layer: Vec<u8> = (0u32..300_000)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let diff_id = Digest::sha256_of(&layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": Platform::host().architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))?;
        let manifest = ImageManifest::new_oci(
            Descriptor::new(
                media_type::OCI_CONFIG,
                Digest::sha256_of(&config),
                config.len() as u64,
            ),
            vec![Descriptor::new(
                media_type::OCI_LAYER_TAR,
                Digest::sha256_of(&layer),
                layer.len() as u64,
            )],
        );
        Ok(FakeImage {
            manifest: manifest.to_json()?,
            config,
            layer,
        })
    }

    fn layer_digest(&self) -> String {
        Digest::sha256_of(&self.layer).to_string()
    }

    /// The registry API for repository `test/img`, tag `1`: None for other paths.
    fn answer(&self, req: &Request) -> Option<Reply> {
        let path = req.path.as_str();
        if path == "/v2/test/img/manifests/1" {
            return Some(
                reply(200, &self.manifest)
                    .header("content-type", media_type::OCI_MANIFEST)
                    .header(
                        "docker-content-digest",
                        &Digest::sha256_of(&self.manifest).to_string(),
                    ),
            );
        }
        let blob = path.strip_prefix("/v2/test/img/blobs/")?;
        if blob == Digest::sha256_of(&self.config).to_string() {
            return Some(reply(200, &self.config));
        }
        if blob == self.layer_digest() {
            return Some(reply(200, &self.layer));
        }
        Some(reply(404, b""))
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    client: Client,
    reference: Reference,
}

fn setup(addr: &str, credentials: Option<Credentials>) -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let client = Client::new(ClientOptions {
        insecure: vec![addr.to_owned()],
        credentials,
        docker_config: Some(dir.path().join("no-docker-config.json")),
        backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    });
    let reference = Reference::parse(&format!("{addr}/test/img:1"))?;
    Ok(Setup {
        _dir: dir,
        store,
        client,
        reference,
    })
}

fn pull(s: &Setup) -> Result<registry::Pulled, RegistryError> {
    registry::pull(&s.client, &s.store, &s.reference, &Platform::host())
}

/// Temp files left in the store's blob directory.
fn temp_files(store: &Store) -> Result<usize> {
    Ok(std::fs::read_dir(store.root().join("blobs/sha256"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .count())
}

#[test]
fn bearer_token_flow() -> Result<()> {
    let image = Arc::new(FakeImage::new()?);
    let addr = Arc::new(Mutex::new(String::new()));
    let (img, at) = (image.clone(), addr.clone());
    let good = Credentials {
        username: "u".into(),
        password: "pw".into(),
    };
    let basic = good.basic_header();
    let (server, log) = serve(Arc::new(move |req: &Request| {
        let here = at.lock().map(|a| a.clone()).unwrap_or_default();
        if req.path.starts_with("/token?") {
            return if req.header("authorization") == Some(basic.as_str()) {
                reply(200, br#"{"token":"tok-123"}"#)
            } else {
                reply(401, b"{}")
            };
        }
        if req.header("authorization") != Some("Bearer tok-123") {
            let challenge = format!(
                "Bearer realm=\"http://{here}/token\",service=\"fake\",scope=\"repository:test/img:pull\""
            );
            return reply(401, b"").header("www-authenticate", &challenge);
        }
        img.answer(req).unwrap_or_else(|| reply(404, b""))
    }))?;
    if let Ok(mut a) = addr.lock() {
        a.clone_from(&server);
    }

    let s = setup(&server, Some(good))?;
    let pulled = pull(&s)?;
    assert_eq!(pulled.manifest.digest, Digest::sha256_of(&image.manifest));
    assert_eq!(pulled.fetched, 2);
    let token_requests: Vec<Request> = log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|r| r.path.starts_with("/token"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // One token for the whole pull, asked for the repository's pull scope.
    assert_eq!(token_requests.len(), 1, "{token_requests:?}");
    assert!(
        token_requests[0].path.contains("service=fake")
            && token_requests[0]
                .path
                .contains("scope=repository%3Atest%2Fimg%3Apull"),
        "{:?}",
        token_requests[0].path
    );

    let s = setup(
        &server,
        Some(Credentials {
            username: "u".into(),
            password: "wrong".into(),
        }),
    )?;
    let err = pull(&s).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("rejected the credentials"), "{err}");
    let s = setup(&server, None)?;
    let err = pull(&s).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("requires credentials"), "{err}");
    Ok(())
}

#[test]
fn corrupted_blob_is_rejected_and_not_stored() -> Result<()> {
    let image = Arc::new(FakeImage::new()?);
    let img = image.clone();
    let (server, _) = serve(Arc::new(move |req: &Request| {
        if req.path.ends_with(&img.layer_digest()) {
            let mut bad = img.layer.clone();
            bad[1000] ^= 1;
            return reply(200, &bad);
        }
        img.answer(req).unwrap_or_else(|| reply(404, b""))
    }))?;
    let s = setup(&server, None)?;
    let err = pull(&s).err();
    assert!(
        matches!(
            err,
            Some(RegistryError::Store(
                skiff_specs::StoreError::DigestMismatch { .. }
            ))
        ),
        "{err:?}"
    );
    assert!(!s.store.has_blob(&Digest::sha256_of(&image.layer))?);
    assert!(!s.store.has_blob(&Digest::sha256_of(&image.manifest))?);
    assert!(s.store.list()?.is_empty());
    assert_eq!(temp_files(&s.store)?, 0);
    Ok(())
}

/// N of a `bytes=N-` Range header.
fn range_start(range: &str) -> Option<usize> {
    range
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// A 206 reply with `blob` from byte `from` on.
fn rest_of(blob: &[u8], from: usize) -> Reply {
    let total = blob.len();
    reply(206, &blob[from.min(total)..]).header(
        "content-range",
        &format!("bytes {from}-{}/{total}", total - 1),
    )
}

#[test]
fn cut_download_resumes_with_range() -> Result<()> {
    let image = Arc::new(FakeImage::new()?);
    let img = image.clone();
    let requests = AtomicUsize::new(0);
    let (server, log) = serve(Arc::new(move |req: &Request| {
        if req.path.ends_with(&img.layer_digest()) {
            if let Some(range) = req.header("range") {
                return rest_of(&img.layer, range_start(range).unwrap_or(0));
            }
            if requests.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut r = reply(200, &img.layer);
                r.cut_after = Some(120_000);
                return r;
            }
        }
        img.answer(req).unwrap_or_else(|| reply(404, b""))
    }))?;
    let s = setup(&server, None)?;
    pull(&s)?;
    assert!(s.store.has_blob(&Digest::sha256_of(&image.layer))?);
    let ranges: Vec<String> = log
        .lock()
        .map(|l| {
            l.iter()
                .filter_map(|r| r.header("range").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // The second request asked for the rest only (the first 120000 bytes arrived).
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    let from = range_start(&ranges[0]).context("not a bytes=N- range")?;
    assert!(from > 0 && from <= 120_000, "{ranges:?}");
    Ok(())
}

#[test]
fn server_errors_are_retried() -> Result<()> {
    let image = Arc::new(FakeImage::new()?);
    let img = image.clone();
    let failures = Arc::new(Mutex::new(2));
    let (server, _) = serve(Arc::new(move |req: &Request| {
        if req.path.contains("/manifests/") {
            if let Ok(mut left) = failures.lock() {
                if *left > 0 {
                    *left -= 1;
                    return reply(503, b"");
                }
            }
        }
        img.answer(req).unwrap_or_else(|| reply(404, b""))
    }))?;
    let s = setup(&server, None)?;
    pull(&s)?;

    // A 404 is an answer, not retried: the error names the URL and the registry's code.
    let (server, log) = serve(Arc::new(|_req: &Request| {
        reply(
            404,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
    }))?;
    let s = setup(&server, None)?;
    let err = pull(&s).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("/v2/test/img/manifests/1") && err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );
    assert_eq!(log.lock().map(|l| l.len()).unwrap_or(0), 1);
    Ok(())
}

#[test]
fn a_failed_pull_leaves_a_partial_blob_the_next_pull_completes() -> Result<()> {
    let image = Arc::new(FakeImage::new()?);
    let img = image.clone();
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = broken.clone();
    let (server, log) = serve(Arc::new(move |req: &Request| {
        if req.path.ends_with(&img.layer_digest()) {
            let from = req.header("range").and_then(range_start).unwrap_or(0);
            let mut r = if from > 0 {
                rest_of(&img.layer, from)
            } else {
                reply(200, &img.layer)
            };
            // While broken, every reply stops 20000 bytes in.
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                r.cut_after = Some(20_000);
            }
            return r;
        }
        img.answer(req).unwrap_or_else(|| reply(404, b""))
    }))?;
    let s = setup(&server, None)?;
    let err = pull(&s).err();
    assert!(matches!(err, Some(RegistryError::Body { .. })), "{err:?}");
    let partial = s.store.root().join(registry::INGEST_DIR).join(format!(
        "sha256-{}.partial",
        Digest::sha256_of(&image.layer).hex()
    ));
    let kept = std::fs::metadata(&partial)?.len();
    assert!(kept >= 20_000, "{kept}");
    assert!(s.store.list()?.is_empty());

    broken.store(false, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut l) = log.lock() {
        l.clear();
    }
    pull(&s)?;
    assert!(s.store.has_blob(&Digest::sha256_of(&image.layer))?);
    assert!(!partial.exists());
    let ranges: Vec<String> = log
        .lock()
        .map(|l| {
            l.iter()
                .filter_map(|r| r.header("range").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ranges, vec![format!("bytes={kept}-")]);
    Ok(())
}

#[test]
fn an_index_resolves_to_the_host_platform() -> Result<()> {
    let image = Arc::new(FakeImage::new()?);
    let host = Platform::host();
    let other = Platform {
        architecture: if host.architecture == "s390x" {
            "amd64"
        } else {
            "s390x"
        }
        .to_owned(),
        ..host.clone()
    };
    let manifest_digest = Digest::sha256_of(&image.manifest);
    let mut mine = Descriptor::new(
        media_type::OCI_MANIFEST,
        manifest_digest.clone(),
        image.manifest.len() as u64,
    );
    mine.platform = Some(host.clone());
    let mut theirs = Descriptor::new(media_type::OCI_MANIFEST, Digest::sha256_of(b"not here"), 8);
    theirs.platform = Some(other);
    let index = skiff_specs::ImageIndex {
        manifests: vec![theirs, mine],
        ..skiff_specs::ImageIndex::default()
    };
    let index_bytes = index.to_json()?;
    let img = image.clone();
    let (server, log) = serve(Arc::new(move |req: &Request| {
        if req.path == "/v2/test/img/manifests/1" {
            return reply(200, &index_bytes).header("content-type", media_type::OCI_INDEX);
        }
        if req.path
            == format!(
                "/v2/test/img/manifests/{}",
                Digest::sha256_of(&img.manifest)
            )
        {
            return reply(200, &img.manifest).header("content-type", media_type::OCI_MANIFEST);
        }
        img.answer(req).unwrap_or_else(|| reply(404, b""))
    }))?;
    let s = setup(&server, None)?;
    let pulled = pull(&s)?;
    assert_eq!(pulled.manifest.digest, manifest_digest);
    assert_eq!(
        s.store.resolve(&format!("{server}/test/img:1"))?.digest,
        manifest_digest
    );
    // The other platform's manifest was never asked for.
    let asked: Vec<String> = log
        .lock()
        .map(|l| l.iter().map(|r| r.path.clone()).collect())
        .unwrap_or_default();
    assert!(
        !asked
            .iter()
            .any(|p| p.contains(&Digest::sha256_of(b"not here").to_string())),
        "{asked:?}"
    );
    Ok(())
}

#[test]
fn schema1_manifests_are_refused_by_name() -> Result<()> {
    let (server, _) = serve(Arc::new(|_req: &Request| {
        reply(
            200,
            br#"{"schemaVersion":1,"name":"test/img","fsLayers":[]}"#,
        )
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        )
    }))?;
    let s = setup(&server, None)?;
    let err = pull(&s).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("unsupported manifest media type") && err.contains("manifest.v1+prettyjws"),
        "{err}"
    );
    Ok(())
}
