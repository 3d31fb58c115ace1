//! Image indexes: OCI `application/vnd.oci.image.index.v1+json`, Docker's
//! manifest list, and an OCI layout's `index.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::{Descriptor, Platform};
use crate::media_type;

/// A list of manifests, e.g. one per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Default for ImageIndex {
    fn default() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: None,
        }
    }
}

impl ImageIndex {
    /// The manifest for `platform`: the first entry whose platform matches,
    /// skipping entries without a platform (attestations and the like).
    pub fn manifest_for(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            media_type::is_manifest(&d.media_type)
                && d.platform.as_ref().is_some_and(|p| platform.matches(p))
        })
    }

    /// Canonical bytes: compact JSON in field order.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn picks_platform() -> anyhow::Result<()> {
        let mut amd = Descriptor::new(media_type::OCI_MANIFEST, Digest::sha256_of(b"a"), 1);
        amd.platform = Some(Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: None,
            features: None,
        });
        let mut arm = amd.clone();
        arm.digest = Digest::sha256_of(b"b");
        if let Some(p) = arm.platform.as_mut() {
            p.architecture = "arm64".into();
        }
        let index = ImageIndex {
            manifests: vec![amd.clone(), arm.clone()],
            ..ImageIndex::default()
        };
        let want = |arch: &str| Platform {
            architecture: arch.into(),
            ..Platform::host()
        };
        assert_eq!(index.manifest_for(&want("arm64")), Some(&arm));
        assert_eq!(index.manifest_for(&want("amd64")), Some(&amd));
        assert_eq!(index.manifest_for(&want("s390x")), None);
        let parsed: ImageIndex = serde_json::from_slice(&index.to_json()?)?;
        assert_eq!(parsed, index);
        Ok(())
    }
}
