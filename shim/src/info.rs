//! `-info`: containerd 1.7 and later ask a shim binary what it is before
//! using it (`ctr plugins`, CRI's runtime handler features). The answer is a
//! `containerd.types.RuntimeInfo` protobuf on stdout; stdin may hold the
//! runtime options as a protobuf Any, which choose the runtime binary whose
//! `features` JSON goes into the answer.

use std::io::{IsTerminal, Read, Write};
use std::process::Command;

use anyhow::{Context, Result};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};

use crate::options::Options;

/// The runtime type containerd knows this shim by.
pub const RUNTIME_NAME: &str = "io.containerd.skiff.v2";
/// containerd's type URL for the runtime-spec features document (JSON).
const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

pub fn run(debug: bool) -> Result<()> {
    crate::logging::init(debug);
    let options = read_options()?;
    let info = runtime_info(options)?;
    let bytes = info
        .write_to_bytes()
        .context("cannot encode the RuntimeInfo")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .context("cannot write the RuntimeInfo to stdout")
}

/// The runtime options Any on stdin; None when stdin is empty (or a
/// terminal: someone typing `-info` by hand gives none).
fn read_options() -> Result<Option<Any>> {
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .context("cannot read the runtime options from stdin")?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let any = Any::parse_from_bytes(&bytes)
        .context("stdin: the runtime options are not a protobuf Any")?;
    Ok(Some(any))
}

fn runtime_info(options: Option<Any>) -> Result<RuntimeInfo> {
    let parsed = Options::from_any(options.as_ref())?;
    let mut info = RuntimeInfo {
        name: RUNTIME_NAME.to_string(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        }),
        options: options.into(),
        ..Default::default()
    };
    // Like containerd's own shim: a runtime without `features` still runs
    // containers, so its info merely goes without them.
    match features(&parsed) {
        Ok(json) => {
            info.features = MessageField::some(Any {
                type_url: FEATURES_TYPE.to_string(),
                value: json,
                ..Default::default()
            })
        }
        Err(e) => tracing::debug!("no runtime features: {e:#}"),
    }
    Ok(info)
}

/// `<runtime> features`, checked to be JSON and made compact.
fn features(options: &Options) -> Result<Vec<u8>> {
    let binary = options.binary();
    let out = Command::new(&binary)
        .arg("features")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} features", binary.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{} features: {}: {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} features printed no JSON", binary.display()))?;
    Ok(serde_json::to_vec(&doc)?)
}
