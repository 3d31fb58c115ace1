//! Registry credentials from docker's config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): `auths` entries (base64 `user:password`), and credential
//! helpers (`credHelpers` per registry, `credsStore` for all) run as
//! `docker-credential-HELPER get`. `login` writes an `auths` entry.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};

use super::reference::DOCKER_HUB;
use super::session::Client;
use super::RegistryError;

/// The key docker uses for Docker Hub in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

// The password never appears in logs or errors.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", BASE64.encode(pair))
    }
}

/// docker's config file.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker/config.json"))
}

/// The host part of an `auths` key (`https://host/v1/` or `host`).
fn key_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

fn keys_match(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    host == registry
        || registry == DOCKER_HUB && matches!(host, "index.docker.io" | "registry-1.docker.io")
}

/// Credentials for `registry` (as in a reference: `docker.io`, `host:port`), if the config
/// file at `path` has any. A broken config file or a failing helper is an error, not "no
/// credentials": a silent anonymous fallback would hide the cause of a later 401.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let config = match read_config(path)? {
        Some(c) => c,
        None => return Ok(None),
    };
    let bad = |reason: String| RegistryError::Credentials {
        path: path.to_owned(),
        reason,
    };
    let helper = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.iter().find(|(k, _)| keys_match(k, registry)))
        .and_then(|(_, v)| v.as_str())
        .or_else(|| config.get("credsStore").and_then(Value::as_str));
    if let Some(auths) = config.get("auths").and_then(Value::as_object) {
        if let Some((key, entry)) = auths.iter().find(|(k, _)| keys_match(k, registry)) {
            if let Some(creds) = auth_entry(entry).map_err(|r| bad(format!("auths.{key}: {r}")))? {
                return Ok(Some(creds));
            }
        }
    }
    match helper {
        Some(helper) if !helper.is_empty() => run_helper(helper, registry).map_err(bad),
        _ => Ok(None),
    }
}

fn read_config(path: &Path) -> Result<Option<Map<String, Value>>, RegistryError> {
    let bad = |reason: String| RegistryError::Credentials {
        path: path.to_owned(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(bad("not a JSON object".to_owned())),
        Err(e) => Err(bad(format!("invalid JSON: {e}"))),
    }
}

/// An `auths` entry: `auth` (base64 of user:password) or `username` and `password`.
/// An entry with neither (docker leaves `{}` when a helper holds the secret) is None.
fn auth_entry(entry: &Value) -> Result<Option<Credentials>, String> {
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        if auth.is_empty() {
            return Ok(None);
        }
        let bytes = BASE64
            .decode(auth.trim())
            .map_err(|e| format!("auth is not base64: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| "auth is not UTF-8".to_owned())?;
        let (username, password) = text
            .split_once(':')
            .ok_or("auth is not base64 of user:password")?;
        return Ok(Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(match (field("username"), field("password")) {
        (Some(username), Some(password)) => Some(Credentials { username, password }),
        _ => None,
    })
}

/// `docker-credential-HELPER get` with the registry on stdin; JSON
/// `{"Username": ..., "Secret": ...}` on stdout. "credentials not found" is None.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, String> {
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "credential helper name {helper:?} is not a plain name"
        ));
    }
    let program = format!("docker-credential-{helper}");
    let server = if registry == DOCKER_HUB {
        DOCKER_HUB_KEY
    } else {
        registry
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{program} get failed ({}): {}",
            out.status,
            format!("{stdout}{stderr}").trim()
        ));
    }
    let reply: Value =
        serde_json::from_str(&stdout).map_err(|e| format!("{program}: invalid reply: {e}"))?;
    let field = |k: &str| reply.get(k).and_then(Value::as_str).unwrap_or_default();
    Ok(Some(Credentials {
        username: field("Username").to_owned(),
        password: field("Secret").to_owned(),
    }))
}

/// The config file `client` reads and writes.
fn client_config_path(client: &Client) -> Result<PathBuf, RegistryError> {
    client
        .options()
        .docker_config
        .clone()
        .or_else(config_path)
        .ok_or_else(|| RegistryError::Credentials {
            path: PathBuf::from("~/.docker/config.json"),
            reason: "neither DOCKER_CONFIG nor HOME is set".to_owned(),
        })
}

/// Checks `credentials` against `registry` (as `docker login` does) and saves them in the
/// config file's `auths`. Returns the file written.
pub fn login(
    client: &Client,
    registry: &str,
    credentials: &Credentials,
) -> Result<PathBuf, RegistryError> {
    let path = client_config_path(client)?;
    client.check_login(registry, credentials)?;
    let mut config = read_config(&path)?.unwrap_or_default();
    let key = if registry == DOCKER_HUB {
        DOCKER_HUB_KEY
    } else {
        registry
    };
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(RegistryError::Credentials {
            path,
            reason: "auths is not an object".to_owned(),
        });
    };
    let pair = format!("{}:{}", credentials.username, credentials.password);
    let mut entry = Map::new();
    entry.insert("auth".to_owned(), Value::String(BASE64.encode(pair)));
    auths.insert(key.to_owned(), Value::Object(entry));
    write_config(&path, config)?;
    Ok(path)
}

/// Removes `registry`'s `auths` entries from the config file (a credential helper's store
/// is left alone). Returns the file when it had any.
pub fn logout(client: &Client, registry: &str) -> Result<Option<PathBuf>, RegistryError> {
    let path = client_config_path(client)?;
    let Some(mut config) = read_config(&path)? else {
        return Ok(None);
    };
    let Some(Value::Object(auths)) = config.get_mut("auths") else {
        return Ok(None);
    };
    let before = auths.len();
    auths.retain(|key, _| !keys_match(key, registry));
    if auths.len() == before {
        return Ok(None);
    }
    write_config(&path, config)?;
    Ok(Some(path))
}

/// Replaces the config file: it holds secrets, so it is written private (0600) and
/// renamed into place.
fn write_config(path: &Path, config: Map<String, Value>) -> Result<(), RegistryError> {
    let bad = |reason: String| RegistryError::Credentials {
        path: path.to_owned(),
        reason,
    };
    let dir = path
        .parent()
        .ok_or_else(|| bad("has no parent directory".to_owned()))?;
    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    let text = serde_json::to_vec_pretty(&Value::Object(config)).map_err(|e| bad(e.to_string()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)
        .map_err(|e| bad(e.to_string()))?;
    temp.write_all(&text)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| bad(e.to_string()))?;
    temp.persist(path).map_err(|e| bad(e.error.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_entries() {
        let entry = serde_json::json!({"auth": BASE64.encode("me:p:w")});
        let creds = auth_entry(&entry).ok().flatten();
        assert_eq!(
            creds,
            Some(Credentials {
                username: "me".into(),
                password: "p:w".into()
            })
        );
        assert_eq!(auth_entry(&serde_json::json!({})), Ok(None));
        assert!(auth_entry(&serde_json::json!({"auth": "!!"})).is_err());
        assert!(keys_match("https://index.docker.io/v1/", DOCKER_HUB));
        assert!(keys_match("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!keys_match("127.0.0.1:5000", "127.0.0.1:5001"));
    }
}
