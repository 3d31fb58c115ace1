//! Image references the way docker writes them: `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`.
//! A name without a registry is Docker Hub's, and a one-part Docker Hub name lives under
//! `library/` (`busybox` is `docker.io/library/busybox:latest`).

use std::fmt;

use crate::digest::Digest;

use super::RegistryError;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, docker.io for Docker Hub.
    pub registry: String,
    /// The repository path inside the registry, e.g. `library/busybox`.
    pub repository: String,
    /// The tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `input`.
    pub fn parse(input: &str) -> Result<Reference, RegistryError> {
        let bad = |reason: &str| RegistryError::Reference {
            reference: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() || input.len() > 4096 {
            return Err(bad("must be 1 to 4096 characters"));
        }
        let (name, digest) = match input.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(Digest::parse(digest).map_err(|e| bad(&e.to_string()))?),
            ),
            None => (input, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(bad)?;
        }
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first != first.to_lowercase() =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), path.to_owned()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        check_registry(&registry).map_err(bad)?;
        check_repository(&repository).map_err(bad)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the manifests endpoint for: the digest when there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The host (and port) the registry API is served on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The same repository with another tag or digest.
    pub fn with_tag(&self, tag: Option<String>, digest: Option<Digest>) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag,
            digest,
        }
    }
}

/// The full normalised form, e.g. `docker.io/library/busybox:latest`; skiff's store names
/// pulled images this way.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_tag(tag: &str) -> Result<(), &'static str> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("a tag is 1 to 128 letters, digits and _.- (not starting with . or -)")
    }
}

fn check_registry(registry: &str) -> Result<(), &'static str> {
    let ok = !registry.is_empty()
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("the registry must be a host name or address with an optional :port")
    }
}

fn check_repository(repository: &str) -> Result<(), &'static str> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let (Some(first), Some(last)) = (b.first(), b.last()) else {
            return false;
        };
        let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        alnum(first) && alnum(last) && b.iter().all(|x| alnum(x) || b"._-".contains(x))
    };
    if repository.len() <= 255 && repository.split('/').all(component_ok) {
        Ok(())
    } else {
        Err("repository parts are lowercase letters and digits joined by . _ - and separated by /")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &str) -> String {
        Reference::parse(input).map_or_else(|e| format!("error: {e}"), |r| r.to_string())
    }

    #[test]
    fn normalises_like_docker() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("index.docker.io/x/y:z"), "docker.io/x/y:z");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b:v1");
        assert_eq!(norm(&format!("quay.io/a@{d}")), format!("quay.io/a@{d}"));
        assert_eq!(
            norm(&format!("a:t@{d}")),
            format!("docker.io/library/a:t@{d}")
        );
        let r = Reference::parse("host:5000/app").ok();
        assert_eq!(r.as_ref().map(|r| r.api_host()), Some("host:5000"));
        let r = Reference::parse("busybox").ok();
        assert_eq!(
            r.map(|r| r.api_host().to_owned()),
            Some(DOCKER_HUB_API.into())
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "a//b",
            "a:",
            "a:-x",
            "a@sha256:123",
            "a b",
            "host:5000/",
            "a/../b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
