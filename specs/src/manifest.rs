//! Image manifests: OCI `application/vnd.oci.image.manifest.v1+json` and
//! Docker schema2 `application/vnd.docker.distribution.manifest.v2+json`,
//! which share one shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::media_type;

/// A single-platform image: one config and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    /// An OCI manifest for a config and layers.
    pub fn new_oci(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
        }
    }

    /// The media type to give a descriptor of this manifest: the declared
    /// one, or OCI's when the manifest leaves it out (as the OCI spec allows).
    pub fn effective_media_type(&self) -> &str {
        self.media_type
            .as_deref()
            .unwrap_or(media_type::OCI_MANIFEST)
    }

    /// Canonical bytes: compact JSON in field order, the same for equal values.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn round_trips_docker_schema2() -> anyhow::Result<()> {
        let json = r#"{
           "schemaVersion": 2,
           "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {
              "mediaType": "application/vnd.docker.container.image.v1+json",
              "size": 1469,
              "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
           },
           "layers": [
              {
                 "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                 "size": 2479,
                 "digest": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
              }
           ]
        }"#;
        let m: ImageManifest = serde_json::from_str(json)?;
        assert_eq!(m.effective_media_type(), media_type::DOCKER_MANIFEST);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, 2479);
        let again: ImageManifest = serde_json::from_slice(&m.to_json()?)?;
        assert_eq!(again, m);
        Ok(())
    }

    #[test]
    fn serialization_is_deterministic() -> anyhow::Result<()> {
        let config = Descriptor::new(media_type::OCI_CONFIG, Digest::sha256_of(b"c"), 1);
        let layer = Descriptor::new(media_type::OCI_LAYER_TAR, Digest::sha256_of(b"l"), 1);
        let mut a = ImageManifest::new_oci(config.clone(), vec![layer.clone()]);
        let mut b = ImageManifest::new_oci(config, vec![layer]);
        a.annotations = Some([("z".into(), "1".into()), ("a".into(), "2".into())].into());
        b.annotations = Some([("a".into(), "2".into()), ("z".into(), "1".into())].into());
        assert_eq!(a.to_json()?, b.to_json()?);
        let text = String::from_utf8(a.to_json()?)?;
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"#));
        Ok(())
    }
}
