//! Content digests (`sha256:<hex>`). A `Digest` can only be built from a
//! validated string or a finished hash, so its hex part is always safe to use
//! as a file name: no separators, no dots, lower-case hex of the right length.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// Hash algorithms the OCI image spec registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings and in `blobs/<name>/` directories.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lower-case hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {input:?}: expected ALGORITHM:HEX")]
    Format { input: String },
    #[error(
        "invalid digest {input:?}: unsupported algorithm {algorithm:?} (sha256 and sha512 are)"
    )]
    Algorithm { input: String, algorithm: String },
    #[error("invalid digest {input:?}: {algorithm} needs {expected} lower-case hex characters")]
    Hex {
        input: String,
        algorithm: Algorithm,
        expected: usize,
    },
}

/// A validated content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:hex`, accepting only sha256 and sha512 with lower-case
    /// hex of the exact length.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let Some((name, hex)) = input.split_once(':') else {
            return Err(DigestError::Format {
                input: input.to_owned(),
            });
        };
        let algorithm = Algorithm::from_name(name).ok_or_else(|| DigestError::Algorithm {
            input: input.to_owned(),
            algorithm: name.to_owned(),
        })?;
        Self::from_parts(algorithm, hex).map_err(|_| DigestError::Hex {
            input: input.to_owned(),
            algorithm,
            expected: algorithm.hex_len(),
        })
    }

    /// Builds a digest from an algorithm and its hex part, e.g. a blob file
    /// name found under `blobs/sha256/`.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Self, DigestError> {
        let valid = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::Hex {
                input: format!("{algorithm}:{hex}"),
                algorithm,
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// sha256 of a byte slice.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::compute(Algorithm::Sha256, bytes)
    }

    /// The digest of a byte slice with the given algorithm.
    pub fn compute(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part; validated, so usable as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// `blobs/<algorithm>/<hex>`, the blob's path inside an OCI image layout.
    pub fn layout_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm, self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Incremental hash that also counts the bytes it saw.
pub struct Hasher {
    state: State,
    len: u64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm())
            .field("len", &self.len)
            .finish()
    }
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(Sha256::new()),
            Algorithm::Sha512 => State::Sha512(Sha512::new()),
        };
        Hasher { state, len: 0 }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self.state {
            State::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            State::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algorithm,
            hex: to_hex(&bytes),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// A writer that hashes everything written through it.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W> fmt::Debug for DigestWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestWriter")
            .field("hasher", &self.hasher)
            .finish()
    }
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        DigestWriter {
            inner,
            hasher: Hasher::new(algorithm),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer accepted is part of the content.
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes everything read through it (a layer's compressed and
/// uncompressed streams while they are unpacked).
pub struct DigestReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R> fmt::Debug for DigestReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestReader")
            .field("hasher", &self.hasher)
            .finish()
    }
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        DigestReader {
            inner,
            hasher: Hasher::new(algorithm),
        }
    }

    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Returns the inner reader, the digest and the byte count of what was read.
    pub fn finish(self) -> (R, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A reader that hashes everything read through it and, at end of input,
/// fails with `InvalidData` if the content is not what was expected.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: u64,
}

impl<R> fmt::Debug for VerifyingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingReader")
            .field("expected", &self.expected)
            .field("expected_size", &self.expected_size)
            .finish()
    }
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            expected_size,
        }
    }

    fn check(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        let len = hasher.len();
        if len != self.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} has {len} bytes, expected {}",
                    self.expected, self.expected_size
                ),
            ));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {} has digest {actual}", self.expected),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match &mut self.hasher {
            Some(hasher) if n > 0 => {
                hasher.update(&buf[..n]);
                if hasher.len() > self.expected_size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob {} is longer than its {} bytes",
                            self.expected, self.expected_size
                        ),
                    ));
                }
            }
            Some(_) if !buf.is_empty() => self.check()?,
            _ => {}
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() -> anyhow::Result<()> {
        let d = Digest::parse(EMPTY_SHA256)?;
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(
            d.layout_path(),
            format!("blobs/sha256/{}", &EMPTY_SHA256[7..])
        );
        let long = format!("sha512:{}", "a".repeat(128));
        assert_eq!(Digest::parse(&long)?.algorithm(), Algorithm::Sha512);
        Ok(())
    }

    #[test]
    fn rejects_bad_digests() {
        let bad = [
            "",
            "sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../../../etc/passwd",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
            "sha512:aaaa",
        ];
        for input in bad {
            assert!(Digest::parse(input).is_err(), "{input:?} was accepted");
        }
        let err = Digest::parse("sha1:abc").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                r#"invalid digest "sha1:abc": unsupported algorithm "sha1" (sha256 and sha512 are)"#
            )
        );
    }

    #[test]
    fn serde_validates() {
        let ok: Result<Digest, _> = serde_json::from_str(&format!("\"{EMPTY_SHA256}\""));
        assert!(ok.is_ok());
        let bad: Result<Digest, _> = serde_json::from_str("\"sha256:../x\"");
        assert!(bad.is_err());
    }

    #[test]
    fn hashes_known_values() -> anyhow::Result<()> {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY_SHA256);
        assert_eq!(
            Digest::sha256_of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(b"abc");
        assert_eq!(
            h.finish().hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        Ok(())
    }

    #[test]
    fn writer_hashes_what_passes() -> anyhow::Result<()> {
        let mut w = DigestWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(b"ab")?;
        w.write_all(b"c")?;
        let (inner, digest, len) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(len, 3);
        assert_eq!(digest, Digest::sha256_of(b"abc"));
        Ok(())
    }

    #[test]
    fn reader_hashes_what_passes() -> anyhow::Result<()> {
        let mut r = DigestReader::new(&b"abcdef"[..], Algorithm::Sha256);
        let mut first = [0u8; 3];
        r.read_exact(&mut first)?;
        let (_, digest, len) = r.finish();
        assert_eq!((digest, len), (Digest::sha256_of(b"abc"), 3));
        Ok(())
    }

    #[test]
    fn verifying_reader_accepts_and_rejects() -> anyhow::Result<()> {
        let good = Digest::sha256_of(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], good.clone(), 5).read_to_end(&mut out)?;
        assert_eq!(out, b"hello");

        let err = VerifyingReader::new(&b"hellO"[..], good.clone(), 5)
            .read_to_end(&mut Vec::new())
            .err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
        let short = VerifyingReader::new(&b"hell"[..], good.clone(), 5)
            .read_to_end(&mut Vec::new())
            .err();
        assert!(short.is_some());
        let long = VerifyingReader::new(&b"hello!"[..], good, 5)
            .read_to_end(&mut Vec::new())
            .err();
        assert!(long.is_some());
        Ok(())
    }
}
