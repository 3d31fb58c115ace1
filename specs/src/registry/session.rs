//! Requests to one repository of one registry: URLs, authentication (anonymous, basic,
//! bearer token on a 401 challenge) and retries of transient failures with backoff.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{self, Challenge};
use super::credentials::{self, Credentials};
use super::reference::Reference;
use super::RegistryError;

/// A reply whose body has not been read.
pub(crate) type Reply = ureq::http::Response<ureq::Body>;

/// Attempts of a request that fails transiently.
const ATTEMPTS: u32 = 4;
/// Bytes of an error reply read for its message.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host[:port]`, as in references) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Blob transfers run at once.
    pub parallel: usize,
    /// Blobs larger than this are uploaded in PATCH chunks of this size; smaller ones in
    /// one PUT.
    pub chunk_size: u64,
    /// Credentials for every registry, instead of docker's config file.
    pub credentials: Option<Credentials>,
    /// docker's config file to read credentials from [default: `$DOCKER_CONFIG/config.json`,
    /// else `~/.docker/config.json`].
    pub docker_config: Option<PathBuf>,
    /// First pause before a retry (doubled each time).
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: Vec::new(),
            parallel: 4,
            chunk_size: 64 << 20,
            credentials: None,
            docker_config: None,
            backoff: Duration::from_millis(250),
        }
    }
}

/// A registry client; connections are pooled and shared by its threads.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub(crate) options: ClientOptions,
}

impl Client {
    pub fn new(options: ClientOptions) -> Client {
        Client {
            // Registries may take a while to answer the PUT that ends a big upload.
            agent: crate::http::agent(Duration::from_secs(120)),
            options,
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    fn base_url(&self, host: &str, registry: &str) -> String {
        let plain = self
            .options
            .insecure
            .iter()
            .any(|i| i == registry || i == host);
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        match &self.options.credentials {
            Some(c) => Ok(Some(c.clone())),
            None => match self
                .options
                .docker_config
                .clone()
                .or_else(credentials::config_path)
            {
                Some(path) => credentials::lookup(&path, registry),
                None => Ok(None),
            },
        }
    }

    /// A session for `reference`'s repository, asking for pull (and push) rights.
    pub(crate) fn session(
        &self,
        reference: &Reference,
        push: bool,
    ) -> Result<Session<'_>, RegistryError> {
        let actions = if push { "pull,push" } else { "pull" };
        Ok(Session {
            client: self,
            base: self.base_url(reference.api_host(), &reference.registry),
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            scopes: Mutex::new(vec![format!(
                "repository:{}:{actions}",
                reference.repository
            )]),
            credentials: self.credentials_for(&reference.registry)?,
            authorization: Mutex::new(None),
        })
    }

    /// `GET /v2/` with `credentials`, as `docker login` checks them.
    pub(crate) fn check_login(
        &self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<(), RegistryError> {
        let host = Reference::parse(&format!("{registry}/x"))?;
        let session = Session {
            client: self,
            base: self.base_url(host.api_host(), registry),
            registry: registry.to_owned(),
            repository: String::new(),
            scopes: Mutex::new(Vec::new()),
            credentials: Some(credentials.clone()),
            authorization: Mutex::new(None),
        };
        let url = format!("{}/v2/", session.base);
        let reply = session.send("GET", &url, &[], Body::Empty)?;
        if reply.status().is_success() {
            return Ok(());
        }
        Err(status_error(&url, reply))
    }
}

/// A request body that can be sent again on a retry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

/// Requests to one repository.
#[derive(Debug)]
pub(crate) struct Session<'c> {
    client: &'c Client,
    /// `scheme://host[:port]`.
    base: String,
    registry: String,
    pub repository: String,
    /// Token scopes asked for; grows when a mount needs pull rights on another repository.
    scopes: Mutex<Vec<String>>,
    credentials: Option<Credentials>,
    /// The `Authorization` header value earned so far.
    authorization: Mutex<Option<String>>,
}

impl Session<'_> {
    pub fn options(&self) -> &ClientOptions {
        &self.client.options
    }

    /// `BASE/v2/REPOSITORY/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    /// A Location header made absolute (registries may send a path).
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Asks for pull rights on `repository` too in the next token (for a cross-repository
    /// mount); the current token is dropped.
    pub fn add_pull_scope(&self, repository: &str) {
        let scope = format!("repository:{repository}:pull");
        if let Ok(mut scopes) = self.scopes.lock() {
            if !scopes.contains(&scope) {
                scopes.push(scope);
                if let Ok(mut auth) = self.authorization.lock() {
                    if auth.as_deref().is_some_and(|a| a.starts_with("Bearer ")) {
                        *auth = None;
                    }
                }
            }
        }
    }

    /// Sends a request, authenticating on a 401 challenge and retrying transient failures
    /// (no reply, 429, 5xx) unless the body is a file part: a registry may have kept part
    /// of it, so the caller restarts that upload instead. Other statuses are returned for
    /// the caller to judge.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Reply, RegistryError> {
        let retries = if matches!(body, Body::File { .. }) {
            1
        } else {
            ATTEMPTS
        };
        let mut attempt = 0;
        let mut challenged = false;
        loop {
            // Our credentials or token go to this registry only, not to wherever a
            // Location header points.
            let sent_auth = self
                .authorization
                .lock()
                .ok()
                .and_then(|a| a.clone())
                .filter(|_| same_origin(url, &self.base));
            let result = self.dispatch(method, url, headers, body, sent_auth.as_deref());
            let reply = match result {
                Ok(reply) => reply,
                Err(e) if e.is_transient() && attempt + 1 < retries => {
                    tracing::debug!(%url, error = %e, "retrying");
                    attempt += 1;
                    self.pause(attempt);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = reply.status().as_u16();
            if status == 401 && !challenged {
                challenged = true;
                let challenge = reply
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                drain(reply);
                let header = self.answer(url, challenge.as_deref(), sent_auth.as_deref())?;
                if let Ok(mut auth) = self.authorization.lock() {
                    *auth = Some(header);
                }
                continue;
            }
            if status == 401 {
                let reason = if self.credentials.is_some() {
                    "the registry rejected the credentials (wrong user name or password?)"
                } else {
                    "authentication required: log in with `skiff-build login` or add \
                     credentials to ~/.docker/config.json"
                };
                drain(reply);
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    reason: reason.to_owned(),
                });
            }
            if (status == 429 || status >= 500) && attempt + 1 < retries {
                tracing::debug!(%url, status, "retrying");
                drain(reply);
                attempt += 1;
                self.pause(attempt);
                continue;
            }
            return Ok(reply);
        }
    }

    fn pause(&self, attempt: u32) {
        std::thread::sleep(self.client.options.backoff * 2u32.saturating_pow(attempt - 1));
    }

    /// The Authorization header that answers a 401's challenge.
    fn answer(
        &self,
        url: &str,
        challenge: Option<&str>,
        sent: Option<&str>,
    ) -> Result<String, RegistryError> {
        let unauthorized = |reason: String| RegistryError::Unauthorized {
            registry: self.registry.clone(),
            reason,
        };
        let challenge = challenge
            .map(auth::parse_challenge)
            .transpose()
            .map_err(|r| unauthorized(format!("{url}: bad WWW-Authenticate header: {r}")))?;
        match challenge {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let mut scopes = self.scopes.lock().map(|s| s.clone()).unwrap_or_default();
                for s in scope.iter().flat_map(|s| s.split(' ')) {
                    if !s.is_empty() && !scopes.iter().any(|have| have == s) {
                        scopes.push(s.to_owned());
                    }
                }
                let token = auth::fetch_token(
                    &self.client.agent,
                    &realm,
                    service.as_deref(),
                    &scopes,
                    self.credentials.as_ref(),
                )
                .map_err(unauthorized)?;
                Ok(format!("Bearer {token}"))
            }
            Some(Challenge::Basic) | None => {
                let Some(creds) = &self.credentials else {
                    return Err(unauthorized(
                        "authentication required: log in with `skiff-build login` or add \
                         credentials to ~/.docker/config.json"
                            .to_owned(),
                    ));
                };
                let header = creds.basic_header();
                if sent == Some(header.as_str()) {
                    return Err(unauthorized(
                        "the registry rejected the credentials (wrong user name or password?)"
                            .to_owned(),
                    ));
                }
                Ok(header)
            }
        }
    }

    fn dispatch(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        authorization: Option<&str>,
    ) -> Result<Reply, RegistryError> {
        let agent = &self.client.agent;
        let failed = |e: ureq::Error| RegistryError::Request {
            url: url.to_owned(),
            reason: e.to_string(),
            transient: is_transient(&e),
        };
        macro_rules! with_headers {
            ($builder:expr) => {{
                let mut b = $builder;
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                if let Some(a) = authorization {
                    b = b.header("authorization", a);
                }
                b
            }};
        }
        match method {
            "GET" => with_headers!(agent.get(url)).call().map_err(failed),
            "HEAD" => with_headers!(agent.head(url)).call().map_err(failed),
            "DELETE" => with_headers!(agent.delete(url)).call().map_err(failed),
            _ => {
                let builder = match method {
                    "POST" => agent.post(url),
                    "PATCH" => agent.patch(url),
                    _ => agent.put(url),
                };
                let builder = with_headers!(builder);
                match body {
                    Body::Empty => builder
                        .header("content-length", "0")
                        .send_empty()
                        .map_err(failed),
                    Body::Bytes(bytes) => builder.send(bytes).map_err(failed),
                    Body::File { file, offset, len } => {
                        let mut f = file;
                        f.seek(SeekFrom::Start(offset))
                            .map_err(|source| RegistryError::Body {
                                url: url.to_owned(),
                                source,
                            })?;
                        let mut reader = f.take(len);
                        builder
                            .header("content-length", len.to_string())
                            .send(ureq::SendBody::from_reader(&mut reader))
                            .map_err(failed)
                    }
                }
            }
        }
    }
}

/// Failures worth a retry: the connection broke or timed out. TLS, DNS and protocol
/// errors will be the same next time.
fn is_transient(e: &ureq::Error) -> bool {
    use io::ErrorKind::*;
    match e {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionReset
                | ConnectionAborted
                | ConnectionRefused
                | BrokenPipe
                | UnexpectedEof
                | TimedOut
                | Interrupted
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::BodyStalled => true,
        _ => false,
    }
}

/// Whether `url` is on the registry at `base` (`scheme://host[:port]`).
fn same_origin(url: &str, base: &str) -> bool {
    url.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Reads and drops what is left of a reply, so its connection can be reused.
pub(crate) fn drain(reply: Reply) {
    let _ = io::copy(
        &mut reply.into_body().into_reader().take(MAX_ERROR_BODY),
        &mut io::sink(),
    );
}

/// A header of a reply as text.
pub(crate) fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The error for a reply with an unexpected status, with the registry's error messages.
pub(crate) fn status_error(url: &str, reply: Reply) -> RegistryError {
    let status = reply.status().as_u16();
    let mut text = String::new();
    let _ = reply
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_string(&mut text);
    let messages: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            format!("{} {}", field("code"), field("message"))
                .trim()
                .to_owned()
        })
        .collect();
    RegistryError::Status {
        url: url.to_owned(),
        status,
        message: if messages.is_empty() {
            String::new()
        } else {
            format!(": {}", messages.join("; "))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn authorization_stays_on_the_registry() {
        assert!(same_origin("https://r:5000/v2/x", "https://r:5000"));
        assert!(!same_origin("https://r:50001/v2/x", "https://r:5000"));
        assert!(!same_origin("https://r:5000.evil/v2/x", "https://r:5000"));
        assert!(!same_origin("http://r:5000/v2/x", "https://r:5000"));
    }
}
