//! Content descriptors (a typed pointer to a blob) and platforms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media_type;

/// An OCI content descriptor. Field order is the serialization order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Sets an annotation, creating the map if needed.
    pub fn set_annotation(&mut self, key: &str, value: impl Into<String>) {
        self.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.into());
    }

    /// Removes an annotation, dropping the map when it becomes empty.
    pub fn remove_annotation(&mut self, key: &str) {
        if let Some(map) = &mut self.annotations {
            map.remove(key);
            if map.is_empty() {
                self.annotations = None;
            }
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(media_type::ANNOTATION_REF_NAME)
    }
}

/// The platform an image runs on, in Go's GOOS/GOARCH terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

impl Platform {
    /// The platform of the machine this program was built for.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_owned(),
            os: std::env::consts::OS.to_owned(),
            os_version: None,
            os_features: None,
            variant: variant.map(str::to_owned),
            features: None,
        }
    }

    /// Whether an image built for `other` runs here. A missing variant on
    /// either side matches, and arm64's default variant is v8.
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let norm = |v: &Option<String>| match (self.architecture.as_str(), v.as_deref()) {
            ("arm64", Some("v8")) | (_, None) => None,
            (_, Some(v)) => Some(v.to_owned()),
        };
        match (norm(&self.variant), norm(&other.variant)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_spec_order() -> anyhow::Result<()> {
        let mut d = Descriptor::new(media_type::OCI_MANIFEST, Digest::sha256_of(b"x"), 1);
        d.set_annotation("b", "2");
        d.set_annotation("a", "1");
        d.platform = Some(Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: None,
            features: None,
        });
        let json = serde_json::to_string(&d)?;
        assert_eq!(
            json,
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":1,"annotations":{{"a":"1","b":"2"}},"platform":{{"architecture":"amd64","os":"linux"}}}}"#,
                media_type::OCI_MANIFEST,
                Digest::sha256_of(b"x")
            )
        );
        let back: Descriptor = serde_json::from_str(&json)?;
        assert_eq!(back, d);
        d.remove_annotation("a");
        d.remove_annotation("b");
        assert_eq!(d.annotations, None);
        Ok(())
    }

    #[test]
    fn rejects_negative_size_and_bad_digest() {
        let neg = r#"{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}"#;
        assert!(serde_json::from_str::<Descriptor>(neg).is_err());
        let bad = r#"{"mediaType":"x","digest":"sha256:../../etc","size":1}"#;
        assert!(serde_json::from_str::<Descriptor>(bad).is_err());
    }

    #[test]
    fn platform_matching() {
        let host = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: Some("v8".into()),
            features: None,
        };
        let mut other = host.clone();
        other.variant = None;
        assert!(host.matches(&other));
        other.architecture = "amd64".into();
        assert!(!host.matches(&other));
        assert!(Platform::host().matches(&Platform::host()));
    }
}
