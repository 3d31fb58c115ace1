//! The image configuration blob (`application/vnd.oci.image.config.v1+json`,
//! Docker's `application/vnd.docker.container.image.v1+json`). Maps are
//! BTreeMaps and fields serialize in declaration order, so equal configs give
//! identical bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// An image configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time, kept as written so re-serializing is exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
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
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<History>>,
}

impl ImageConfig {
    /// The container defaults, or empty ones when the image has none.
    pub fn container_config(&self) -> ContainerConfig {
        self.config.clone().unwrap_or_default()
    }

    /// Canonical bytes: compact JSON in field order.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// An empty JSON object, the value type of ExposedPorts and Volumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Defaults for containers run from the image (the `config` field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Keys like `80/tcp`, `53/udp` or a bare `8080` (tcp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker extension; OCI configs ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Docker extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Docker extension: instructions run when the image is a build's base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Docker extension: the shell of shell-form instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Docker's HEALTHCHECK. Durations are nanoseconds; zero means inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args...]`, `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The layer diff ids (digests of the uncompressed layer tars), bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One build step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True for steps that made no layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

impl History {
    pub fn is_empty_layer(&self) -> bool {
        self.empty_layer.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from a real `docker inspect`ed busybox config, with Docker's
    // extra fields that we do not model.
    const DOCKER_CONFIG: &str = r#"{
      "architecture": "amd64",
      "config": {
        "Hostname": "",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "Entrypoint": null,
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3},
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "OnBuild": null,
        "Labels": {"b": "2", "a": "1"}
      },
      "container_config": {"Cmd": ["/bin/sh"]},
      "created": "2023-05-19T20:19:24.315125457Z",
      "docker_version": "20.10.23",
      "history": [
        {"created": "2023-05-19T20:19:24Z", "created_by": "/bin/sh -c #(nop) ADD file:1 in / "},
        {"created": "2023-05-19T20:19:24Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true}
      ],
      "os": "linux",
      "rootfs": {"type": "layers", "diff_ids": ["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}
    }"#;

    #[test]
    fn reads_docker_config() -> anyhow::Result<()> {
        let c: ImageConfig = serde_json::from_str(DOCKER_CONFIG)?;
        let cc = c.container_config();
        assert_eq!(cc.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.healthcheck.as_ref().and_then(|h| h.retries), Some(3));
        assert!(cc
            .exposed_ports
            .as_ref()
            .is_some_and(|p| p.contains_key("80/tcp")));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let history = c.history.unwrap_or_default();
        assert!(history[1].is_empty_layer() && !history[0].is_empty_layer());
        Ok(())
    }

    #[test]
    fn serializes_deterministically() -> anyhow::Result<()> {
        let c: ImageConfig = serde_json::from_str(DOCKER_CONFIG)?;
        let text = String::from_utf8(c.to_json()?)?;
        let expected = concat!(
            r#"{"created":"2023-05-19T20:19:24.315125457Z","architecture":"amd64","os":"linux","#,
            r#""config":{"ExposedPorts":{"80/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"#,
            r#""Cmd":["sh"],"Volumes":{"/data":{}},"Labels":{"a":"1","b":"2"},"#,
            r#""Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3}},"#,
            r#""rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"#,
            r#""history":[{"created":"2023-05-19T20:19:24Z","created_by":"/bin/sh -c #(nop) ADD file:1 in / "},"#,
            r#"{"created":"2023-05-19T20:19:24Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}]}"#
        );
        assert_eq!(text, expected);
        let again: ImageConfig = serde_json::from_str(&text)?;
        assert_eq!(again.to_json()?, c.to_json()?);
        Ok(())
    }
}
