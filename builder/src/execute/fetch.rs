//! ADD of http(s) URLs, with BuildKit's semantics: the file is named after the last
//! segment of the URL's path (`__unnamed__` when there is none), gets mode 0600 (or
//! --chmod), owner 0:0 (or --chown) and the reply's Last-Modified as mtime (the epoch
//! without one), and is never extracted. With --checksum the step's key is the checksum,
//! so a cached step sends no request, and the download must match it. Without, the
//! content's digest is the key, so a changed remote file rebuilds the step: the URL is
//! asked again on every build, with If-None-Match when an earlier reply had an ETag, so an
//! unchanged file is not downloaded again (see `url_cache`). The builder downloads on the
//! host's network whatever RUN's network is.

use std::fs::{File, FileTimes};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use skiff_specs::http::{Client, HttpError};
use skiff_specs::{Algorithm, Digest};

use super::copy::CopySource;
use super::url_cache::UrlCache;
use crate::error::{BuildError, Result};
use crate::frontend::Source;

/// The largest download ADD accepts.
pub const MAX_DOWNLOAD: u64 = 16 << 30;

/// The name BuildKit gives a download whose URL path has no last segment.
const UNNAMED: &str = "__unnamed__";

/// Whether an ADD source is a URL rather than a context path.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A downloaded file, in the download cache.
#[derive(Debug, Clone)]
struct Fetched {
    digest: Digest,
    /// Seconds since the epoch, from Last-Modified.
    mtime: u64,
    path: PathBuf,
}

#[derive(Debug)]
struct Remote {
    url: String,
    name: String,
    cache: UrlCache,
    fetched: Option<Fetched>,
}

/// The URL sources of one ADD.
#[derive(Debug)]
pub struct Remotes {
    step: String,
    /// The download cache (`<build-cache>/http`).
    cache_root: PathBuf,
    /// False with --no-cache: downloads are stored, earlier ones are not reused.
    reuse: bool,
    checksum: Option<Digest>,
    list: Vec<Remote>,
    client: Option<Client>,
}

impl Remotes {
    /// Checks --checksum as BuildKit does: only with a single URL source, and a valid
    /// digest. Downloads are kept below `cache_root`; `reuse` allows taking earlier ones.
    pub fn new(
        step: &str,
        checksum: Option<&str>,
        sources: &[Source],
        cache_root: PathBuf,
        reuse: bool,
    ) -> Result<Self> {
        let checksum = match checksum {
            None => None,
            Some(c) => {
                if sources.len() != 1 {
                    return Err(BuildError::step(
                        step,
                        "--checksum can't be specified for multiple sources",
                    ));
                }
                if !matches!(&sources[0], Source::Path(p) if is_url(p)) {
                    return Err(BuildError::step(
                        step,
                        "--checksum can't be specified for non-HTTP(S) sources",
                    ));
                }
                Some(
                    Digest::parse(c)
                        .map_err(|e| BuildError::step(step, format!("--checksum: {e}")))?,
                )
            }
        };
        Ok(Remotes {
            step: step.to_owned(),
            cache_root,
            reuse,
            checksum,
            list: Vec::new(),
            client: None,
        })
    }

    /// Adds the URL source `url`; returns its copy source, whose path [`Remotes::fetch`]
    /// fills in (the `Fetched` sources are matched to the URLs in order).
    pub fn add(&mut self, url: &str) -> Result<CopySource> {
        let name =
            file_name(url).map_err(|e| BuildError::step(&self.step, format!("{url}: {e}")))?;
        self.list.push(Remote {
            url: url.to_owned(),
            name: name.clone(),
            cache: UrlCache::new(&self.cache_root, url),
            fetched: None,
        });
        Ok(CopySource::Fetched {
            name,
            path: PathBuf::new(),
        })
    }

    /// What the URL sources contribute to the step's key (nothing when there are none):
    /// the checksum when given, else the content's digest and mtime, fetching now.
    pub fn key_inputs(&mut self) -> Result<String> {
        let mut out = String::new();
        for i in 0..self.list.len() {
            let part = match &self.checksum {
                Some(c) => format!("\nurl {} checksum {c}", self.list[i].name),
                None => {
                    let f = self.fetch_one(i)?;
                    format!("\nurl {} {} mtime {}", self.list[i].name, f.digest, f.mtime)
                }
            };
            out.push_str(&part);
        }
        Ok(out)
    }

    /// Fetches what is not fetched yet (with --checksum: when the step really runs) and
    /// points the `Fetched` sources among `sources` at the files.
    pub fn fetch(&mut self, sources: Vec<CopySource>) -> Result<Vec<CopySource>> {
        let mut i = 0;
        let mut out = Vec::with_capacity(sources.len());
        for source in sources {
            out.push(match source {
                CopySource::Fetched { name, .. } => {
                    let path = self.fetch_one(i)?.path;
                    i += 1;
                    CopySource::Fetched { name, path }
                }
                other => other,
            });
        }
        Ok(out)
    }

    fn fetch_one(&mut self, i: usize) -> Result<Fetched> {
        let remote = self
            .list
            .get(i)
            .ok_or_else(|| BuildError::step(&self.step, "more URL sources than URLs"))?;
        if let Some(f) = &remote.fetched {
            return Ok(f.clone());
        }
        let client = self.client.get_or_insert_with(Client::new).clone();
        let fetched = fetch(
            &client,
            remote,
            self.checksum.as_ref(),
            self.reuse,
            &self.step,
        )?;
        self.list[i].fetched = Some(fetched.clone());
        Ok(fetched)
    }
}

/// The remote's content: from the download cache when `reuse` allows and it is known to
/// be current (the checksum's content is there, or the server answers 304 to the ETag of
/// the last download), else downloaded into the cache (mode 0600, mtime from
/// Last-Modified). A download that fails or does not match the checksum leaves nothing.
fn fetch(
    client: &Client,
    remote: &Remote,
    checksum: Option<&Digest>,
    reuse: bool,
    step: &str,
) -> Result<Fetched> {
    let fail = |e: HttpError| BuildError::step(step, e.to_string());
    let cache_err = |e: std::io::Error| BuildError::step(step, format!("download cache: {e}"));
    let cache = &remote.cache;
    if let (Some(sum), true) = (checksum, reuse) {
        if let Some((path, mtime)) = cache.find(sum) {
            return Ok(Fetched {
                digest: sum.clone(),
                mtime,
                path,
            });
        }
    }
    let known = (reuse && checksum.is_none())
        .then(|| cache.known())
        .flatten();
    let headers: Vec<(&str, &str)> = known
        .iter()
        .map(|k| ("If-None-Match", k.etag.as_str()))
        .collect();
    let reply = client.get(&remote.url, &headers).map_err(fail)?;
    if reply.status() == 304 {
        let etag = reply.header("etag").map(strip_weak);
        return match known {
            Some(k) if etag.is_none_or(|e| e == strip_weak(&k.etag)) => Ok(Fetched {
                digest: k.digest,
                mtime: k.mtime,
                path: k.path,
            }),
            _ => Err(BuildError::step(
                step,
                format!(
                    "{}: 304 Not Modified for an ETag not asked about",
                    reply.url()
                ),
            )),
        };
    }
    let reply = reply.success().map_err(fail)?;
    let mtime = reply
        .header("last-modified")
        .and_then(parse_http_date)
        .unwrap_or(0);
    let etag = reply.header("etag").map(str::to_owned);
    let url = reply.url().to_owned();
    // A temp file (mode 0600) that is removed unless stored.
    let temp = cache.temp_file().map_err(cache_err)?;
    let algorithm = checksum.map_or(Algorithm::Sha256, Digest::algorithm);
    let (digest, _) = reply
        .copy_to(temp.as_file(), MAX_DOWNLOAD, algorithm)
        .map_err(fail)?;
    if let Some(expected) = checksum.filter(|c| **c != digest) {
        return Err(BuildError::step(
            step,
            format!("digest mismatch for {url}: {digest} (expected: {expected})"),
        ));
    }
    set_mtime(temp.as_file(), temp.path(), mtime)?;
    let path = cache
        .store(temp, &digest, mtime, etag.as_deref())
        .map_err(cache_err)?;
    Ok(Fetched {
        digest,
        mtime,
        path,
    })
}

/// An ETag without its weak marker, for comparing.
fn strip_weak(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag)
}

fn set_mtime(file: &File, path: &Path, secs: u64) -> Result<()> {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    file.set_times(FileTimes::new().set_accessed(t).set_modified(t))
        .map_err(BuildError::io(path))
}

/// The file name of a download: the last segment of the URL's path, percent-decoded
/// (trailing slashes ignored), or `__unnamed__`. Names that could leave the destination
/// directory (`..`, or with a NUL) are refused.
pub fn file_name(url: &str) -> std::result::Result<String, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let decoded = percent_decode(path)?;
    let base = decoded
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match base {
        "" | "." => Ok(UNNAMED.to_owned()),
        ".." => Err("the URL's path ends in \"..\", not a file name".to_owned()),
        b if b.contains('\0') => Err("the URL's file name contains a NUL byte".to_owned()),
        b => Ok(b.to_owned()),
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the URL's path {s:?} is not UTF-8"))
}

/// Seconds since the epoch of an HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850
/// and asctime forms); None for anything else or a date before 1970.
pub fn parse_http_date(s: &str) -> Option<u64> {
    use chrono::NaiveDateTime;
    let s = s.trim();
    let secs = chrono::DateTime::parse_from_rfc2822(s)
        .map(|d| d.timestamp())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s, "%A, %d-%b-%y %H:%M:%S GMT")
                .map(|d| d.and_utc().timestamp())
        })
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s, "%a %b %e %H:%M:%S %Y")
                .map(|d| d.and_utc().timestamp())
        })
        .ok()?;
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        let name = |u: &str| file_name(u);
        assert_eq!(name("https://h/a/b.tar.gz"), Ok("b.tar.gz".into()));
        assert_eq!(name("https://h/a/b/?x=1#f"), Ok("b".into()));
        assert_eq!(name("https://h/dir/my%20file"), Ok("my file".into()));
        assert_eq!(name("https://h:8080/x%2Fy"), Ok("y".into()));
        assert_eq!(name("https://h"), Ok(UNNAMED.into()));
        assert_eq!(name("https://h/"), Ok(UNNAMED.into()));
        assert_eq!(name("https://h/a/."), Ok(UNNAMED.into()));
        assert!(name("https://h/a/..").is_err());
        assert!(name("https://h/a/%2e%2e").is_err());
        assert!(name("https://h/a%2F..").is_err());
        assert!(name("https://h/a%00b").is_err());
        assert!(name("https://h/a%zz").is_err());
        assert!(name("https://h/%ff").is_err());
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784111777));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
