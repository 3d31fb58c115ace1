//! `ADD <url>` end to end: the real skiff-build against a small HTTP server on 127.0.0.1
//! that each test runs itself (no outside service), building FROM scratch.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use skiff_integration::bin;
use skiff_specs::media_type::Compression;
use skiff_specs::{Digest, Image, Store};
use tempfile::TempDir;

mod common;
use common::steps_with;

/// What the server answers for a path.
#[derive(Debug, Clone)]
struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: &[u8]) -> Reply {
        Reply {
            status: "200 OK",
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    fn redirect(to: &str) -> Reply {
        Reply {
            status: "302 Found",
            headers: vec![("Location".into(), to.into())],
            body: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Site {
    replies: HashMap<String, Reply>,
    /// GETs served, per path.
    hits: HashMap<String, usize>,
    /// 304 Not Modified replies, per path.
    not_modified: HashMap<String, usize>,
}

/// An HTTP/1.1 server on 127.0.0.1, one connection at a time, `Connection: close`; stops
/// on drop. Unknown paths get 404; a reply with an ETag becomes 304 Not Modified for a
/// request whose If-None-Match names it.
struct Server {
    addr: String,
    site: Arc<Mutex<Site>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let site = Arc::new(Mutex::new(Site::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (site.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &s);
                }
            }
        });
        Ok(Server {
            addr,
            site,
            stop,
            thread: Some(thread),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, reply: Reply) {
        let mut site = self.site.lock().unwrap_or_else(PoisonError::into_inner);
        site.replies.insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> usize {
        let site = self.site.lock().unwrap_or_else(PoisonError::into_inner);
        site.hits.get(path).copied().unwrap_or(0)
    }

    fn not_modified(&self, path: &str) -> usize {
        let site = self.site.lock().unwrap_or_else(PoisonError::into_inner);
        site.not_modified.get(path).copied().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, site: &Mutex<Site>) -> Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&conn);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut line = String::new();
    let mut if_none_match = None;
    while reader.read_line(&mut line)? > 2 {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(v.trim().to_owned());
            }
        }
        line.clear();
    }
    let target = request.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let reply = {
        let mut site = site.lock().unwrap_or_else(PoisonError::into_inner);
        *site.hits.entry(path.clone()).or_default() += 1;
        let reply = site.replies.get(&path).cloned().unwrap_or(Reply {
            status: "404 Not Found",
            headers: Vec::new(),
            body: Vec::new(),
        });
        let etag = reply.headers.iter().find(|(k, _)| k == "ETag");
        match (etag, &if_none_match) {
            (Some((_, tag)), Some(asked)) if tag == asked => {
                *site.not_modified.entry(path.clone()).or_default() += 1;
                Reply {
                    status: "304 Not Modified",
                    headers: vec![("ETag".into(), tag.clone())],
                    body: Vec::new(),
                }
            }
            _ => reply,
        }
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut w = &conn;
    w.write_all(out.as_bytes())?;
    w.write_all(&reply.body)?;
    Ok(())
}

/// A test's store, context and work dirs, removed on drop.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-add-url-test-")
            .tempdir()?;
        fs::create_dir_all(dir.path().join("context"))?;
        fs::create_dir_all(dir.path().join("tmp"))?;
        Ok(Fixture { dir })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn dockerfile(&self, text: &str) -> Result<()> {
        Ok(fs::write(self.path("context/Dockerfile"), text)?)
    }

    /// Runs skiff-build; (success, stderr).
    fn try_build(&self, tag: &str) -> Result<(bool, String)> {
        self.try_build_args(tag, &[])
    }

    fn try_build_args(&self, tag: &str, args: &[&str]) -> Result<(bool, String)> {
        self.try_build_env(tag, args, &[])
    }

    fn try_build_env(
        &self,
        tag: &str,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<(bool, String)> {
        let out = Command::new(bin("skiff-build"))
            .env("TMPDIR", self.path("tmp"))
            // A proxy from the environment could not reach the loopback server.
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .arg("--store")
            .arg(self.path("store"))
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .envs(env.iter().copied())
            .args(["--progress", "plain", "-t", tag])
            .args(args)
            .arg(self.path("context"))
            .output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn build(&self, tag: &str) -> Result<String> {
        self.build_args(tag, &[])
    }

    fn build_args(&self, tag: &str, args: &[&str]) -> Result<String> {
        let (ok, stderr) = self.try_build_args(tag, args)?;
        if !ok {
            bail!("skiff-build failed: {stderr}");
        }
        Ok(stderr)
    }

    fn image(&self, name: &str) -> Result<Image> {
        Ok(Image::load_host(&Store::open(self.path("store"))?, name)?)
    }

    /// The entries of every layer of `name`, top layer last.
    fn files(&self, name: &str) -> Result<Vec<Entry>> {
        let image = self.image(name)?;
        let store = Store::open(self.path("store"))?;
        let mut out = Vec::new();
        for desc in &image.manifest.layers {
            let compression =
                Compression::of_layer(&desc.media_type).context("not a layer media type")?;
            let mut archive = tar::Archive::new(compression.decompress(store.open_blob(desc)?)?);
            for e in archive.entries()? {
                let mut e = e?;
                let mut data = Vec::new();
                e.read_to_end(&mut data)?;
                out.push(Entry {
                    path: e.path()?.to_string_lossy().trim_end_matches('/').to_owned(),
                    kind: e.header().entry_type(),
                    mode: e.header().mode()?,
                    uid: e.header().uid()?,
                    mtime: e.header().mtime()?,
                    data,
                });
            }
        }
        Ok(out)
    }

    /// Files left in the builder's temp dir (its work dir is removed after each build).
    fn leftovers(&self) -> Result<Vec<String>> {
        Ok(fs::read_dir(self.path("tmp"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }

    /// The files of the download cache (ADD <url>), by name.
    fn downloads(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dir in fs::read_dir(self.path("build-cache/http"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                out.push(file.file_name().to_string_lossy().into_owned());
            }
        }
        out
    }

    fn blob_count(&self) -> Result<usize> {
        let dir = self.path("store/blobs/sha256");
        Ok(match fs::read_dir(dir) {
            Ok(rd) => rd.count(),
            Err(_) => 0,
        })
    }
}

#[derive(Debug)]
struct Entry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    mtime: u64,
    data: Vec<u8>,
}

fn find<'a>(entries: &'a [Entry], path: &str) -> Result<&'a Entry> {
    entries
        .iter()
        .rev()
        .find(|e| e.path == path)
        .with_context(|| format!("{path} not in the image: {entries:?}"))
}

fn gzipped_tar() -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "inner.txt", &b"in\n"[..])?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar.into_inner()?)?;
    Ok(gz.finish()?)
}

const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const LAST_MODIFIED_SECS: u64 = 784111777;

#[test]
fn add_url_to_a_dir_and_to_a_file() -> Result<()> {
    let f = Fixture::new()?;
    let s = Server::start()?;
    s.set(
        "/files/hello.txt",
        Reply::ok(b"hello\n").header("Last-Modified", LAST_MODIFIED),
    );
    s.set("/files/my%20file", Reply::ok(b"spaced\n"));
    s.set("/pkg/app.tar.gz", Reply::ok(&gzipped_tar()?));
    s.set("/moved", Reply::redirect("/files/hello.txt"));
    f.dockerfile(&format!(
        "FROM scratch\n\
         ADD {hello} /dl/\n\
         ADD --chmod=755 --chown=1000:1001 {hello} /named\n\
         ADD {spaced}?v=1 {archive} /dl/\n\
         ADD {moved} /\n",
        hello = s.url("/files/hello.txt"),
        spaced = s.url("/files/my%20file"),
        archive = s.url("/pkg/app.tar.gz"),
        moved = s.url("/moved"),
    ))?;
    f.build("u")?;
    let files = f.files("u")?;

    // Into a directory: the URL's last segment names the file; 0600, root, Last-Modified.
    let e = find(&files, "dl/hello.txt")?;
    assert_eq!(e.data, b"hello\n");
    assert_eq!((e.mode & 0o7777, e.uid), (0o600, 0));
    assert_eq!(e.mtime, LAST_MODIFIED_SECS);
    assert!(e.kind.is_file());
    // To a file name, with --chmod and --chown.
    let e = find(&files, "named")?;
    assert_eq!(e.data, b"hello\n");
    assert_eq!((e.mode & 0o7777, e.uid), (0o755, 1000));
    // Percent-decoded name, query left out; no Last-Modified: the epoch.
    let e = find(&files, "dl/my file")?;
    assert_eq!((e.data.as_slice(), e.mtime), (&b"spaced\n"[..], 0));
    // A remote archive is not extracted.
    let e = find(&files, "dl/app.tar.gz")?;
    assert_eq!(e.data, gzipped_tar()?);
    assert!(!files.iter().any(|e| e.path.ends_with("inner.txt")));
    // After a redirect the file keeps the name from the URL written in the Dockerfile.
    assert_eq!(find(&files, "moved")?.data, b"hello\n");
    assert!(f.leftovers()?.is_empty(), "{:?}", f.leftovers()?);
    Ok(())
}

#[test]
fn checksum_is_verified_and_is_the_cache_key() -> Result<()> {
    let f = Fixture::new()?;
    let s = Server::start()?;
    s.set("/tool", Reply::ok(b"tool v1\n"));
    let good = Digest::sha256_of(b"tool v1\n");
    f.dockerfile(&format!(
        "FROM scratch\nADD --checksum={good} {} /bin/\n",
        s.url("/tool")
    ))?;
    let progress = f.build("c")?;
    assert_eq!(s.hits("/tool"), 1);
    assert_eq!(find(&f.files("c")?, "bin/tool")?.data, b"tool v1\n");
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");

    // Rebuilt: CACHED without a request, even though the server now has other content.
    s.set("/tool", Reply::ok(b"tool v2\n"));
    let progress = f.build("c")?;
    assert_eq!(steps_with(&progress, "CACHED").len(), 1, "{progress}");
    assert_eq!(s.hits("/tool"), 1);

    // A wrong checksum: the build fails naming the URL and both digests, and nothing is
    // kept (no image, no blob, no cache entry, no download in the work dir).
    let bad = Digest::sha256_of(b"something else");
    let actual = Digest::sha256_of(b"tool v2\n");
    f.dockerfile(&format!(
        "FROM scratch\nADD --checksum={bad} {} /bin/\n",
        s.url("/tool")
    ))?;
    let blobs = f.blob_count()?;
    let (ok, stderr) = f.try_build("bad")?;
    assert!(!ok, "{stderr}");
    let expected = format!(
        "digest mismatch for {}: {actual} (expected: {bad})",
        s.url("/tool")
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(f.image("bad").is_err());
    assert_eq!(f.blob_count()?, blobs);
    let downloads = f.downloads();
    assert!(
        !downloads.iter().any(|d| d.contains(actual.hex())),
        "{downloads:?}"
    );
    assert!(f.leftovers()?.is_empty(), "{:?}", f.leftovers()?);
    let (ok, _) = f.try_build("bad")?;
    assert!(!ok);
    assert_eq!(s.hits("/tool"), 3);

    // --checksum only with one URL source, and a valid digest.
    for (flags, srcs, msg) in [
        (
            format!("--checksum={good}"),
            "Dockerfile".to_owned(),
            "--checksum can't be specified for non-HTTP(S) sources",
        ),
        (
            format!("--checksum={good}"),
            format!("{} {}", s.url("/tool"), s.url("/tool")),
            "--checksum can't be specified for multiple sources",
        ),
        (
            "--checksum=sha256:abc".to_owned(),
            s.url("/tool"),
            "--checksum: invalid digest",
        ),
    ] {
        f.dockerfile(&format!("FROM scratch\nADD {flags} {srcs} /x/\n"))?;
        let (ok, stderr) = f.try_build("bad")?;
        assert!(!ok && stderr.contains(msg), "{flags} {srcs}: {stderr}");
    }
    Ok(())
}

#[test]
fn without_checksum_the_content_is_the_key() -> Result<()> {
    let f = Fixture::new()?;
    let s = Server::start()?;
    s.set("/data.txt", Reply::ok(b"one\n"));
    f.dockerfile(&format!(
        "FROM scratch\nADD {} /d/\nADD {} /e/\n",
        s.url("/data.txt"),
        s.url("/data.txt")
    ))?;
    f.build("k")?;
    let first = f.image("k")?.manifest.layers;
    // Unchanged remote: fetched again to compare, both steps CACHED, the same image.
    let progress = f.build("k")?;
    assert_eq!(steps_with(&progress, "CACHED").len(), 2, "{progress}");
    assert_eq!(f.image("k")?.manifest.layers, first);
    assert_eq!(s.hits("/data.txt"), 4);

    // Changed remote content (same size): both rebuilt with the new file.
    s.set("/data.txt", Reply::ok(b"two\n"));
    let progress = f.build("k")?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_eq!(steps_with(&progress, "DONE").len(), 3, "{progress}");
    let files = f.files("k")?;
    assert_eq!(find(&files, "d/data.txt")?.data, b"two\n");
    assert_eq!(find(&files, "e/data.txt")?.data, b"two\n");

    // A new Last-Modified is a new mtime in the layer: rebuilt too.
    s.set(
        "/data.txt",
        Reply::ok(b"two\n").header("Last-Modified", LAST_MODIFIED),
    );
    let progress = f.build("k")?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_eq!(
        find(&f.files("k")?, "d/data.txt")?.mtime,
        LAST_MODIFIED_SECS
    );
    Ok(())
}

#[test]
fn bad_urls_and_replies_are_clear_errors() -> Result<()> {
    let f = Fixture::new()?;
    let s = Server::start()?;
    s.set("/loop", Reply::redirect("/loop"));
    s.set("/a/..", Reply::ok(b"x"));
    let cases = [
        (
            s.url("/missing.txt"),
            format!("{}: server replied 404 Not Found", s.url("/missing.txt")),
        ),
        (s.url("/loop"), format!("{}: ", s.url("/loop"))),
        (
            s.url("/a/%2e%2e"),
            "the URL's path ends in \"..\", not a file name".to_owned(),
        ),
        (
            s.url("/a%2F.."),
            "the URL's path ends in \"..\", not a file name".to_owned(),
        ),
        (s.url("/a%00b"), "contains a NUL byte".to_owned()),
        (
            "http://127.0.0.1:1/x".to_owned(),
            "http://127.0.0.1:1/x: ".to_owned(),
        ),
    ];
    for (url, msg) in cases {
        f.dockerfile(&format!("FROM scratch\nADD {url} /dl/\n"))?;
        let (ok, stderr) = f.try_build("e")?;
        assert!(!ok, "{url}: {stderr}");
        assert!(stderr.contains(&msg), "{url}: want {msg:?} in {stderr}");
        assert!(f.image("e").is_err());
    }
    assert!(
        s.hits("/loop") > 1 && s.hits("/loop") <= 11,
        "{}",
        s.hits("/loop")
    );
    assert_eq!(s.hits("/a/%2e%2e"), 0);
    // COPY never downloads.
    s.set("/tool.sh", Reply::ok(b"echo hi\n"));
    f.dockerfile(&format!("FROM scratch\nCOPY {} /dl/\n", s.url("/tool.sh")))?;
    let (ok, stderr) = f.try_build("e")?;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("source can't be a URL for COPY"),
        "{stderr}"
    );
    assert_eq!(s.hits("/tool.sh"), 0);
    assert!(f.leftovers()?.is_empty(), "{:?}", f.leftovers()?);
    Ok(())
}

#[test]
fn an_etag_saves_the_download_and_the_cache_serves_a_checksum() -> Result<()> {
    let f = Fixture::new()?;
    let s = Server::start()?;
    s.set("/big.bin", Reply::ok(b"v1\n").header("ETag", "\"v1\""));
    f.dockerfile(&format!("FROM scratch\nADD {} /opt/\n", s.url("/big.bin")))?;
    f.build("t")?;
    assert_eq!((s.hits("/big.bin"), s.not_modified("/big.bin")), (1, 0));

    // Rebuilt: asked with If-None-Match, 304, CACHED.
    let progress = f.build("t")?;
    assert_eq!(steps_with(&progress, "CACHED").len(), 1, "{progress}");
    assert_eq!((s.hits("/big.bin"), s.not_modified("/big.bin")), (2, 1));

    // A step above changed: the ADD runs, from the cached download after a 304.
    f.dockerfile(&format!(
        "FROM scratch\nENV A=1\nADD {} /opt/\n",
        s.url("/big.bin")
    ))?;
    let progress = f.build("t")?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_eq!(s.not_modified("/big.bin"), 2);
    let e = find(&f.files("t")?, "opt/big.bin")?.data.clone();
    assert_eq!(e, b"v1\n");

    // A new version (new ETag): downloaded and rebuilt.
    s.set("/big.bin", Reply::ok(b"v2\n").header("ETag", "\"v2\""));
    let progress = f.build("t")?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_eq!((s.hits("/big.bin"), s.not_modified("/big.bin")), (4, 2));
    assert_eq!(find(&f.files("t")?, "opt/big.bin")?.data, b"v2\n");

    // --no-cache asks without If-None-Match.
    f.build_args("t", &["--no-cache"])?;
    assert_eq!((s.hits("/big.bin"), s.not_modified("/big.bin")), (5, 2));

    // --checksum of content already downloaded: no request even when the step runs.
    let sum = Digest::sha256_of(b"v2\n");
    f.dockerfile(&format!(
        "FROM scratch\nENV B=2\nADD --checksum={sum} {} /opt/\n",
        s.url("/big.bin")
    ))?;
    let progress = f.build("t")?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_eq!(s.hits("/big.bin"), 5);
    assert_eq!(find(&f.files("t")?, "opt/big.bin")?.data, b"v2\n");

    // prune drops the downloads with the rest of the build cache.
    assert!(!f.downloads().is_empty());
    let status = Command::new(bin("skiff-build"))
        .arg("prune")
        .arg("--store")
        .arg(f.path("store"))
        .stdout(std::process::Stdio::null())
        .status()?;
    assert!(status.success());
    assert!(f.downloads().is_empty(), "{:?}", f.downloads());
    Ok(())
}

/// Runs `program args` in `dir`; fails with its stderr.
fn run_in(dir: &std::path::Path, program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program).current_dir(dir).args(args).output()?;
    if !out.status.success() {
        bail!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A child process killed and reaped on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_checks_the_server_against_the_trust_store() -> Result<()> {
    let f = Fixture::new()?;
    let tls = f.path("tls");
    fs::create_dir_all(tls.join("www"))?;
    fs::write(tls.join("www/tool.txt"), "over tls\n")?;
    // A CA, and a certificate for 127.0.0.1 that it signed.
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=skiff-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    run_in(&tls, "openssl", &ca)?;
    let mut csr = vec![
        "req",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
    ];
    csr.extend(ec);
    run_in(&tls, "openssl", &csr)?;
    fs::write(
        tls.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    run_in(
        &tls,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "srv.pem",
        ],
    )?;
    // openssl's test web server, serving www/ on a port just free.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let accept = format!("127.0.0.1:{port}");
    let _server = Child(
        Command::new("openssl")
            .current_dir(tls.join("www"))
            .args(["s_server", "-quiet", "-WWW", "-accept", &accept])
            .args(["-cert", "../srv.pem", "-key", "../srv.key"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while TcpStream::connect(&accept).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("openssl s_server did not start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("https://{accept}/tool.txt");
    f.dockerfile(&format!("FROM scratch\nADD {url} /t/\n"))?;

    // Trusted (the trust store is the file SSL_CERT_FILE names): downloaded.
    let ca_file = tls.join("ca.pem");
    let (ok, stderr) = f.try_build_env("s", &[], &[("SSL_CERT_FILE", ca_file.as_os_str())])?;
    assert!(ok, "{stderr}");
    assert_eq!(find(&f.files("s")?, "t/tool.txt")?.data, b"over tls\n");

    // The system's store does not know the CA: a clear error.
    let (ok, stderr) = f.try_build_args("s", &["--no-cache"])?;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!("{url}: ")) && stderr.contains("certificate"),
        "{stderr}"
    );
    Ok(())
}
