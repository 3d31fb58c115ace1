//! HTTP(S) GETs for skiff's programs (`ADD <url>` in the builder, registries later): ureq
//! over rustls, checking certificates against the system's trust store, with proxies taken
//! from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY. Replies are hostile input: the
//! number of redirects, the header size and the body size are bounded, a body is streamed
//! (never held in memory) and hashed as it is written, and a failed request names its URL.

use std::io::{self, Read, Write};
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};
use ureq::ResponseExt;

use crate::digest::{Algorithm, Digest, DigestWriter};

/// Redirects followed before giving up (what Go's and so BuildKit's client allow).
pub const MAX_REDIRECTS: u32 = 10;

/// Why a request failed; every variant names the URL asked for.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No reply: a bad URL, DNS, connection, TLS or protocol failure, a timeout, too many
    /// redirects.
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
    /// A reply whose status is not a success.
    #[error("{url}: server replied {status}")]
    Status { url: String, status: String },
    #[error("{url}: the reply is larger than the {limit} bytes allowed")]
    TooLarge { url: String, limit: u64 },
    /// Reading the body or writing it out failed.
    #[error("{url}: {source}")]
    Body { url: String, source: io::Error },
}

/// `url` with the password of a `user:password@` part masked, for messages.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:xxxxx{}", &rest[at..])
}

/// A client; cheap to clone, connections are pooled.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// The one HTTP agent setup of skiff's programs (downloads and registries): the system's
/// trust store, proxies from the environment, bounded redirects and timeouts.
/// `recv_response` is how long a server may think before its reply starts.
pub(crate) fn agent(recv_response: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .proxy(ureq::Proxy::try_from_env())
        .max_redirects(MAX_REDIRECTS)
        .max_redirects_will_error(true)
        // Statuses are the caller's to judge (a 304 is an answer, not an error).
        .http_status_as_error(false)
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(recv_response))
        // A stalled body fails instead of hanging the caller; a slow one is fine.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

impl Client {
    pub fn new() -> Client {
        Client {
            agent: agent(Duration::from_secs(60)),
        }
    }

    /// GETs `url` with extra request `headers`, following redirects. Any status comes back
    /// as a [`Response`]; see [`Response::success`].
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let reply = req.call().map_err(|e| HttpError::Request {
            url: redact(url),
            reason: e.to_string(),
        })?;
        let final_url = redact(&reply.get_uri().to_string());
        let (parts, body) = reply.into_parts();
        Ok(Response {
            url: redact(url),
            final_url,
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// A reply whose body has not been read yet.
#[derive(Debug)]
pub struct Response {
    url: String,
    final_url: String,
    status: ureq::http::StatusCode,
    headers: ureq::http::HeaderMap,
    body: ureq::Body,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The URL asked for (credentials masked).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL that answered, after redirects (credentials masked).
    pub fn final_url(&self) -> &str {
        &self.final_url
    }

    /// A header's value; None when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The reply itself when its status is 2xx, else an error with the status.
    pub fn success(self) -> Result<Response, HttpError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = match self.status.canonical_reason() {
            Some(reason) => format!("{} {reason}", self.status.as_u16()),
            None => self.status.as_u16().to_string(),
        };
        Err(HttpError::Status {
            url: self.url,
            status,
        })
    }

    /// Streams the body (decoded when the server gzipped it) into `out`, at most `limit`
    /// bytes, hashing it with `algorithm`: returns the digest and the size.
    pub fn copy_to(
        self,
        out: impl Write,
        limit: u64,
        algorithm: Algorithm,
    ) -> Result<(Digest, u64), HttpError> {
        let too_large = |url: String| HttpError::TooLarge { url, limit };
        let announced = self
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit) {
            return Err(too_large(self.url));
        }
        let url = self.url;
        let body_err = |url: &str, source: io::Error| HttpError::Body {
            url: url.to_owned(),
            source,
        };
        // One byte past the limit tells a body of exactly `limit` from a longer one.
        let mut reader = self.body.into_reader().take(limit.saturating_add(1));
        let mut writer = DigestWriter::new(out, algorithm);
        io::copy(&mut reader, &mut writer).map_err(|e| body_err(&url, e))?;
        writer.flush().map_err(|e| body_err(&url, e))?;
        let (_, digest, size) = writer.finish();
        if size > limit {
            return Err(too_large(url));
        }
        Ok((digest, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// Serves one connection with `reply` (a whole HTTP/1.1 response), returning the URL.
    fn serve_once(reply: Vec<u8>) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let mut reader = io::BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = (&stream).write_all(&reply);
            }
        });
        Ok(format!("http://{addr}/file"))
    }

    fn client() -> Client {
        // The proxy from the environment would not reach a loopback test server.
        let config = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .build();
        Client {
            agent: config.new_agent(),
        }
    }

    #[test]
    fn body_is_hashed_and_bounded() -> anyhow::Result<()> {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\nhello".to_vec();
        let res = client().get(&serve_once(reply.clone())?, &[])?.success()?;
        assert_eq!(res.header("etag"), Some("\"x\""));
        let mut out = Vec::new();
        let (digest, size) = res.copy_to(&mut out, 5, Algorithm::Sha256)?;
        assert_eq!((out.as_slice(), size), (&b"hello"[..], 5));
        assert_eq!(digest, Digest::sha256_of(b"hello"));

        let res = client().get(&serve_once(reply)?, &[])?;
        let err = res.copy_to(io::sink(), 4, Algorithm::Sha256);
        assert!(
            matches!(err, Err(HttpError::TooLarge { limit: 4, .. })),
            "{err:?}"
        );

        // No Content-Length: the limit still holds while streaming.
        let reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello".to_vec();
        let res = client().get(&serve_once(reply)?, &[])?;
        let err = res.copy_to(io::sink(), 4, Algorithm::Sha256);
        assert!(matches!(err, Err(HttpError::TooLarge { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn credentials_are_masked() {
        assert_eq!(redact("https://u:pw@h/p@x"), "https://u:xxxxx@h/p@x");
        assert_eq!(redact("https://h/p@x"), "https://h/p@x");
    }

    #[test]
    fn failures_name_the_url() -> anyhow::Result<()> {
        let url = serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec())?;
        let err = client().get(&url, &[])?.success().map(|_| ());
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, format!("{url}: server replied 404 Not Found"));

        let err = client().get("http://127.0.0.1:1/x", &[]).map(|_| ());
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("http://127.0.0.1:1/x: "), "{msg}");
        Ok(())
    }
}
