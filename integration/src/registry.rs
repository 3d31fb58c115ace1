//! A private Docker registry (Debian's docker-registry, distribution 2.8) for tests: its
//! own storage in a temp dir, a free loopback port, optional htpasswd basic auth; stopped
//! and removed on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod token;

/// The registry binary.
pub const REGISTRY_BIN: &str = "docker-registry";

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Htpasswd(&'a str, &'a str),
    Token(&'a str, &'a str),
}

/// A running registry.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
}

impl Registry {
    /// Starts an open registry (no auth).
    pub fn start() -> Result<Registry> {
        Self::start_with(None)
    }

    /// Starts a registry that wants `user` and `password` (basic auth from an htpasswd
    /// file).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Result<Registry> {
        Self::start_with(Some((user, password)))
    }

    /// Starts a registry with token auth (`auth: token`) and the token service for it:
    /// a loopback HTTP server that wants `user` and `password` (basic) and hands out JWTs
    /// signed with a key made for this registry, granting whatever scope is asked.
    pub fn start_with_token_service(user: &str, password: &str) -> Result<Registry> {
        Self::start_inner(Auth::Token(user, password), false)
    }

    /// Starts an open registry that speaks HTTPS with a self-signed certificate for
    /// 127.0.0.1; [`Registry::tls_cert`] is the file to trust.
    pub fn start_tls() -> Result<Registry> {
        Self::start_inner(Auth::None, true)
    }

    /// The CA certificate that signed the certificate of a registry started with
    /// [`Registry::start_tls`].
    pub fn tls_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(auth: Option<(&str, &str)>) -> Result<Registry> {
        let auth = match auth {
            Some((u, p)) => Auth::Htpasswd(u, p),
            None => Auth::None,
        };
        Self::start_inner(auth, false)
    }

    fn start_inner(auth: Auth<'_>, tls: bool) -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-registry-")
            .tempdir()?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n  secret: skiff-test-secret\n",
            data = dir.path().join("data").display(),
        );
        if tls {
            // A CA (what clients trust) and a server certificate for 127.0.0.1 it signed:
            // webpki refuses a CA certificate as the server's own.
            let script = "set -e
                ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
                openssl req -x509 $ec -days 1 -subj /CN=skiff-test-ca -keyout ca-key.pem -out ca.pem
                openssl req $ec -subj /CN=127.0.0.1 -keyout tls-key.pem -out tls.csr
                printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
                openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \\
                    -days 1 -extfile ext -out tls-cert.pem";
            let out = Command::new("sh")
                .args(["-c", script])
                .current_dir(dir.path())
                .output()
                .context("cannot run openssl")?;
            if !out.status.success() {
                bail!(
                    "making test certificates failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("tls-cert.pem").display(),
                dir.path().join("tls-key.pem").display()
            ));
        }
        if let Auth::Token(user, password) = auth {
            let realm = token::serve(dir.path(), user, password)?;
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                token::SERVICE,
                token::ISSUER,
                dir.path().join("token-cert.pem").display()
            ));
        }
        if let Auth::Htpasswd(user, password) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .context("cannot run htpasswd (Debian package apache2-utils)")?;
            if !out.status.success() {
                bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            fs::write(&htpasswd, &out.stdout)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config)?;
        let log = fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("cannot start {REGISTRY_BIN} (Debian package docker-registry)")
            })?;
        let mut registry = Registry { child, dir, addr };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{REGISTRY_BIN} exited ({status}): {}", self.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "{REGISTRY_BIN} did not listen on {} in 15 s: {}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> &str {
        &self.addr
    }

    /// Where the registry keeps its content.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The blob files the registry stores for `digest` (`sha256:HEX`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        let prefix = hex.get(..2).unwrap_or_default();
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(prefix)
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs skopeo with `args`; returns its stdout, or an error with its stderr.
pub fn skopeo(args: &[&str]) -> Result<String> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .context("cannot run skopeo")?;
    if !out.status.success() {
        bail!(
            "skopeo {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A docker config directory (for DOCKER_CONFIG) holding nothing, so tests never read the
/// host's credentials.
pub fn empty_docker_config(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("docker-config");
    fs::create_dir_all(&path)?;
    Ok(path)
}
