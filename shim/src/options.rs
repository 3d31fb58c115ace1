//! Runtime options: which runtime binary and state root to use. They come
//! from the create request (runc's `containerd.runc.v1.Options`, or CRI's
//! `runtimeoptions.v1.Options` naming a JSON file with the same keys), and are
//! saved in the bundle so `delete` finds them after the shim is gone.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{CodedInputStream, Message};
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use serde::{Deserialize, Serialize};

/// The runtime the shim uses when no option names one.
pub const DEFAULT_BINARY: &str = "skiff";
/// Parent of the per-namespace state roots.
pub const DEFAULT_ROOT: &str = "/run/containerd/skiff";
/// Where the options are saved in the bundle.
const SAVED: &str = "options.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    #[serde(rename = "BinaryName", skip_serializing_if = "String::is_empty")]
    pub binary_name: String,
    #[serde(rename = "Root", skip_serializing_if = "String::is_empty")]
    pub root: String,
    #[serde(rename = "SystemdCgroup")]
    pub systemd_cgroup: bool,
    #[serde(rename = "NoPivotRoot")]
    pub no_pivot_root: bool,
    #[serde(rename = "NoNewKeyring")]
    pub no_new_keyring: bool,
}

impl Options {
    /// Decodes the create request's options; an empty Any means defaults.
    pub fn from_any(any: Option<&Any>) -> Result<Self> {
        let Some(any) = any.filter(|a| !a.type_url.is_empty()) else {
            return Ok(Self::default());
        };
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        match name {
            "containerd.runc.v1.Options" => {
                let o = RuncOptions::parse_from_bytes(&any.value)
                    .context("runtime options: bad containerd.runc.v1.Options")?;
                Ok(Self {
                    binary_name: o.binary_name,
                    root: o.root,
                    systemd_cgroup: o.systemd_cgroup,
                    no_pivot_root: o.no_pivot_root,
                    no_new_keyring: o.no_new_keyring,
                })
            }
            "runtimeoptions.v1.Options" => {
                let path = config_path(&any.value)?;
                if path.is_empty() {
                    return Ok(Self::default());
                }
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("runtime options: cannot read {path}"))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("runtime options: {path} is not valid JSON options"))
            }
            other => anyhow::bail!("runtime options: unsupported type {other:?}"),
        }
    }

    /// The runtime binary: BinaryName, else `skiff` next to the shim, else on PATH.
    pub fn binary(&self) -> PathBuf {
        if !self.binary_name.is_empty() {
            return PathBuf::from(&self.binary_name);
        }
        let beside = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.join(DEFAULT_BINARY)));
        match beside {
            Some(p) if p.exists() => p,
            _ => PathBuf::from(DEFAULT_BINARY),
        }
    }

    /// The state root of `namespace`'s containers.
    pub fn root(&self, namespace: &str) -> PathBuf {
        let base = if self.root.is_empty() {
            DEFAULT_ROOT
        } else {
            &self.root
        };
        Path::new(base).join(namespace)
    }

    pub fn save(&self, bundle: &Path) -> Result<()> {
        let text = serde_json::to_string(self)?;
        fs::write(bundle.join(SAVED), text)
            .with_context(|| format!("cannot write {}", bundle.join(SAVED).display()))
    }

    /// The options saved in `bundle`, or the defaults when there are none.
    pub fn load(bundle: &Path) -> Result<Self> {
        match fs::read_to_string(bundle.join(SAVED)) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid", bundle.join(SAVED).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read {}", bundle.join(SAVED).display()))
            }
        }
    }
}

/// Field 2 (config_path) of CRI's runtimeoptions.v1.Options.
fn config_path(bytes: &[u8]) -> Result<String> {
    let mut input = CodedInputStream::from_bytes(bytes);
    let mut path = String::new();
    while let Some(tag) = input
        .read_raw_tag_or_eof()
        .context("runtime options: bad runtimeoptions.v1.Options")?
    {
        if tag >> 3 == 2 && tag & 7 == 2 {
            path = input.read_string()?;
        } else {
            input.skip_field(
                containerd_shim_protos::protobuf::rt::WireType::new(tag & 7)
                    .context("runtime options: bad wire type")?,
            )?;
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_options_any() -> Result<()> {
        let o = RuncOptions {
            binary_name: "/usr/sbin/runc".into(),
            root: "/r".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: o.write_to_bytes()?,
            ..Default::default()
        };
        let got = Options::from_any(Some(&any))?;
        assert_eq!(got.binary(), PathBuf::from("/usr/sbin/runc"));
        assert_eq!(got.root("ns"), PathBuf::from("/r/ns"));
        Ok(())
    }

    #[test]
    fn config_path_options() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("skiff-shim-opt-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let file = dir.join("o.json");
        fs::write(&file, r#"{"BinaryName": "/x/skiff", "Root": "/st"}"#)?;
        // type_url (1) = "t", config_path (2) = file
        let p = file.to_string_lossy().into_owned();
        let mut value = vec![0x0a, 1, b't', 0x12, p.len() as u8];
        value.extend_from_slice(p.as_bytes());
        let any = Any {
            type_url: "type.googleapis.com/runtimeoptions.v1.Options".into(),
            value,
            ..Default::default()
        };
        let got = Options::from_any(Some(&any));
        fs::remove_dir_all(&dir)?;
        let got = got?;
        assert_eq!(got.binary_name, "/x/skiff");
        assert_eq!(got.root, "/st");
        Ok(())
    }

    #[test]
    fn unknown_type_is_an_error() {
        let any = Any {
            type_url: "x.Y".into(),
            ..Default::default()
        };
        assert!(Options::from_any(Some(&any)).is_err());
    }
}
