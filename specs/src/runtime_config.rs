//! From an image config (plus what the user asked for on the command line) to
//! the process part of an OCI runtime spec, as Docker and podman derive it:
//! args from Entrypoint and Cmd, the image's environment with defaults, the
//! working directory, and the user resolved in the image's own /etc files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::{ContainerConfig, ImageConfig};
use crate::user::{resolve_user, UserError};

/// PATH when the image sets none (Docker's and runc's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the caller overrides, like `docker run`'s flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--entrypoint`; also drops the image's Cmd unless `cmd` is given.
    /// An empty list removes the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name; replaces the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// `-e KEY=VALUE`, applied over the image's Env.
    pub env: Vec<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--workdir`.
    pub working_dir: Option<String>,
}

/// Errors deriving the process; each names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error("no command: the image has neither Entrypoint nor Cmd and none was given")]
    NoCommand,
    #[error("environment entry {entry:?} is not KEY=VALUE")]
    BadEnv { entry: String },
    #[error(transparent)]
    User(#[from] UserError),
}

/// `process.user` of the runtime spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

/// `process` of the runtime spec (the fields an image decides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub user: ProcessUser,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
}

/// What an image says about running it: the process, and the rest passed
/// through for callers (port publishing, volume mounts, stop signal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub process: Process,
    /// `80/tcp`-style keys, sorted.
    pub exposed_ports: Vec<String>,
    /// Absolute container paths, sorted.
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl RuntimeConfig {
    /// The process as runtime-spec JSON, e.g. to merge into a config.json.
    pub fn process_json(&self) -> serde_json::Value {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_value(&self.process).unwrap_or(serde_json::Value::Null)
    }
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Sets `entry` over `env`, replacing an entry with the same key in place.
fn set_env(env: &mut Vec<String>, entry: String) {
    let key = env_key(&entry).to_owned();
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

fn args(
    config: &ContainerConfig,
    overrides: &Overrides,
) -> Result<Vec<String>, RuntimeConfigError> {
    let entrypoint = overrides
        .entrypoint
        .clone()
        .or_else(|| config.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&overrides.cmd, &overrides.entrypoint) {
        (Some(cmd), _) => cmd.clone(),
        // A new entrypoint does not inherit the image's arguments.
        (None, Some(_)) => Vec::new(),
        (None, None) => config.cmd.clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(RuntimeConfigError::NoCommand);
    }
    Ok(args)
}

/// Derives the runtime process for `image` whose root filesystem is at
/// `rootfs` (read only for /etc/passwd and /etc/group, without leaving it).
pub fn runtime_config(
    image: &ImageConfig,
    rootfs: &Path,
    overrides: &Overrides,
) -> Result<RuntimeConfig, RuntimeConfigError> {
    let config = image.container_config();
    let args = args(&config, overrides)?;

    let mut env = Vec::new();
    for entry in config.env.iter().flatten() {
        set_env(&mut env, entry.clone());
    }
    for entry in &overrides.env {
        if !entry.contains('=') || entry.starts_with('=') {
            return Err(RuntimeConfigError::BadEnv {
                entry: entry.clone(),
            });
        }
        set_env(&mut env, entry.clone());
    }
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }

    let user_spec = overrides
        .user
        .as_deref()
        .or(config.user.as_deref())
        .unwrap_or("");
    let user = resolve_user(rootfs, user_spec)?;
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={}", user.home.as_deref().unwrap_or("/")));
    }

    let cwd = overrides
        .working_dir
        .as_deref()
        .or(config.working_dir.as_deref())
        .filter(|d| !d.is_empty())
        .map_or_else(
            || "/".to_owned(),
            |d| {
                if d.starts_with('/') {
                    d.to_owned()
                } else {
                    format!("/{d}")
                }
            },
        );

    Ok(RuntimeConfig {
        process: Process {
            user: ProcessUser {
                uid: user.uid,
                gid: user.gid,
                additional_gids: user.additional_gids,
            },
            args,
            env,
            cwd,
        },
        exposed_ports: config
            .exposed_ports
            .map(|p| p.into_keys().collect())
            .unwrap_or_default(),
        volumes: config
            .volumes
            .map(|v| v.into_keys().collect())
            .unwrap_or_default(),
        stop_signal: config.stop_signal,
        labels: config.labels.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Empty;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(ContainerConfig {
                entrypoint: entrypoint.map(strings),
                cmd: cmd.map(strings),
                ..ContainerConfig::default()
            }),
            ..ImageConfig::default()
        }
    }

    fn args_of(image: &ImageConfig, o: &Overrides) -> Result<Vec<String>, RuntimeConfigError> {
        let dir = tempfile::tempdir().map_err(|e| RuntimeConfigError::BadEnv {
            entry: e.to_string(),
        })?;
        Ok(runtime_config(image, dir.path(), o)?.process.args)
    }

    #[test]
    fn entrypoint_and_cmd_rules() -> anyhow::Result<()> {
        let both = image(Some(&["/entry", "-x"]), Some(&["default"]));
        assert_eq!(
            args_of(&both, &Overrides::default())?,
            ["/entry", "-x", "default"]
        );
        let o = Overrides {
            cmd: Some(vec!["given".into()]),
            ..Overrides::default()
        };
        assert_eq!(args_of(&both, &o)?, ["/entry", "-x", "given"]);
        let o = Overrides {
            entrypoint: Some(vec!["/other".into()]),
            ..Overrides::default()
        };
        assert_eq!(args_of(&both, &o)?, ["/other"], "--entrypoint drops Cmd");
        let o = Overrides {
            entrypoint: Some(vec![]),
            cmd: Some(vec!["sh".into()]),
            ..Overrides::default()
        };
        assert_eq!(args_of(&both, &o)?, ["sh"]);
        let cmd_only = image(None, Some(&["sh", "-c", "true"]));
        assert_eq!(
            args_of(&cmd_only, &Overrides::default())?,
            ["sh", "-c", "true"]
        );
        let none = image(None, None);
        assert!(matches!(
            args_of(&none, &Overrides::default()),
            Err(RuntimeConfigError::NoCommand)
        ));
        Ok(())
    }

    #[test]
    fn env_cwd_user_and_passthrough() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("etc"))?;
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:10:20::/srv/app:/bin/sh\n",
        )?;
        std::fs::write(dir.path().join("etc/group"), "app:x:20:\nextra:x:30:app\n")?;
        let mut img = image(None, Some(&["run"]));
        if let Some(c) = img.config.as_mut() {
            c.env = Some(vec!["A=1".into(), "B=2".into()]);
            c.user = Some("app".into());
            c.working_dir = Some("srv".into());
            c.exposed_ports = Some([("8080/tcp".to_owned(), Empty {})].into());
            c.volumes = Some([("/data".to_owned(), Empty {})].into());
            c.stop_signal = Some("SIGQUIT".into());
        }
        let rc = runtime_config(
            &img,
            dir.path(),
            &Overrides {
                env: vec!["B=3".into(), "C=4".into()],
                ..Overrides::default()
            },
        )?;
        assert_eq!(
            rc.process.env,
            [
                format!("PATH={DEFAULT_PATH}"),
                "A=1".into(),
                "B=3".into(),
                "C=4".into(),
                "HOME=/srv/app".into()
            ]
        );
        assert_eq!(rc.process.cwd, "/srv");
        assert_eq!(
            rc.process.user,
            ProcessUser {
                uid: 10,
                gid: 20,
                additional_gids: vec![30]
            }
        );
        assert_eq!(rc.exposed_ports, ["8080/tcp"]);
        assert_eq!(rc.volumes, ["/data"]);
        assert_eq!(rc.stop_signal.as_deref(), Some("SIGQUIT"));

        // The user override wins and a PATH of the image is kept.
        if let Some(c) = img.config.as_mut() {
            c.env = Some(vec!["PATH=/bin".into(), "HOME=/h".into()]);
        }
        let rc = runtime_config(
            &img,
            dir.path(),
            &Overrides {
                user: Some("0:0".into()),
                working_dir: Some("/w".into()),
                ..Overrides::default()
            },
        )?;
        assert_eq!(rc.process.env, ["PATH=/bin", "HOME=/h"]);
        assert_eq!((rc.process.user.uid, rc.process.cwd.as_str()), (0, "/w"));

        let bad = runtime_config(
            &img,
            dir.path(),
            &Overrides {
                env: vec!["NOEQUALS".into()],
                ..Overrides::default()
            },
        );
        assert!(matches!(bad, Err(RuntimeConfigError::BadEnv { .. })));
        Ok(())
    }

    #[test]
    fn process_json_is_a_runtime_spec_process() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let rc = runtime_config(
            &image(None, Some(&["sh"])),
            dir.path(),
            &Overrides::default(),
        )?;
        let json = rc.process_json();
        assert_eq!(json["user"]["uid"], 0);
        let process: oci_spec::runtime::Process = serde_json::from_value(json)?;
        assert_eq!(process.args().as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(process.cwd().to_str(), Some("/"));
        Ok(())
    }
}
