//! A private containerd 1.6 whose tasks run under skiff's own shim,
//! `containerd-shim-skiff-v2` (runtime io.containerd.skiff.v2): the shim is
//! linked into the private bin dir on containerd's PATH, and its runtime
//! options (a JSON file passed with --runtime-config-path) point it at the
//! logging skiff wrapper and a private state root. Dropping it drops the
//! containerd harness, which kills what is left and unmounts everything.

use std::fs;
use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::containerd::Containerd;
use crate::{bin, wait_until};

/// The runtime name containerd maps to the shim binary.
pub const RUNTIME: &str = "io.containerd.skiff.v2";
pub const SHIM: &str = "containerd-shim-skiff-v2";

pub struct ShimContainerd {
    ctd: Containerd,
}

impl Deref for ShimContainerd {
    type Target = Containerd;
    fn deref(&self) -> &Containerd {
        &self.ctd
    }
}

impl DerefMut for ShimContainerd {
    fn deref_mut(&mut self) -> &mut Containerd {
        &mut self.ctd
    }
}

impl ShimContainerd {
    pub fn start() -> Result<Self> {
        let shim = bin(SHIM);
        if !shim.exists() {
            bail!("{} is missing: cargo build -p skiff-shim", shim.display());
        }
        let mut ctd = Containerd::start_with(true)?;
        symlink(&shim, ctd.bin_dir().join(SHIM)).context("cannot link the shim")?;
        let options = ctd.tmp.path().join("shim-options.json");
        let opts = json!({
            "BinaryName": ctd.bin_dir().join("skiff"),
            "Root": ctd.tmp.path().join("runc"),
        });
        fs::write(&options, opts.to_string())?;
        ctd.set_runtime_flags(vec![
            "--runtime".into(),
            RUNTIME.into(),
            "--runtime-config-path".into(),
            options.into(),
        ]);
        Ok(Self { ctd })
    }

    /// A connection to the shim of task `id`, from the address in its bundle.
    pub fn connect(&self, id: &str) -> Result<UnixStream> {
        let file = self.bundle(id).join("address");
        let address =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let conn = UnixStream::connect(address.trim_start_matches("unix://"))
            .with_context(|| format!("cannot connect to the shim at {address}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(conn)
    }

    /// Waits for the shims to be gone (they exit after containerd's Shutdown),
    /// then checks that nothing at all is left.
    pub fn assert_clean_soon(&self) -> Result<()> {
        let _ = wait_until(5, "the shims to exit", || self.shims().is_empty());
        self.assert_clean()
    }
}

// ---------------------------------------------------------------------------
// A minimal ttrpc client and protobuf codec, to talk to a shim directly
// (the task API as containerd 2.x does, v3, or as 1.6 does, v2).

/// ttrpc message types.
const REQUEST: u8 = 1;
const RESPONSE: u8 = 2;
/// google.rpc codes.
pub const NOT_FOUND: u64 = 5;
pub const UNIMPLEMENTED: u64 = 12;

pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn bytes_field(field: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// Decodes the varint and length-delimited fields of a protobuf message:
/// (field number, bytes, varint value).
pub fn fields(mut b: &[u8]) -> Result<Vec<(u64, Vec<u8>, u64)>> {
    fn read_varint(b: &mut &[u8]) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().context("truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("varint too long")
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = read_varint(&mut b)?;
        match tag & 7 {
            0 => out.push((tag >> 3, Vec::new(), read_varint(&mut b)?)),
            2 => {
                let n = read_varint(&mut b)? as usize;
                if b.len() < n {
                    bail!("truncated field");
                }
                out.push((tag >> 3, b[..n].to_vec(), 0));
                b = &b[n..];
            }
            w => bail!("wire type {w} not handled"),
        }
    }
    Ok(out)
}

/// One ttrpc call: Ok(payload) or Err((code, message)).
pub fn call(
    conn: &mut UnixStream,
    stream: u32,
    service: &str,
    method: &str,
    payload: &[u8],
) -> Result<std::result::Result<Vec<u8>, (u64, String)>> {
    let mut req = Vec::new();
    bytes_field(1, service.as_bytes(), &mut req);
    bytes_field(2, method.as_bytes(), &mut req);
    bytes_field(3, payload, &mut req);
    let mut msg = Vec::new();
    msg.extend_from_slice(&(req.len() as u32).to_be_bytes());
    msg.extend_from_slice(&stream.to_be_bytes());
    msg.extend_from_slice(&[REQUEST, 0]);
    msg.extend_from_slice(&req);
    conn.write_all(&msg)?;
    let mut header = [0u8; 10];
    conn.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if header[8] != RESPONSE {
        bail!("message type {} is not a response", header[8]);
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    let mut status = (0, String::new());
    let mut payload = Vec::new();
    for (f, data, _) in fields(&body)? {
        match f {
            1 => {
                for (sf, sdata, sv) in fields(&data)? {
                    match sf {
                        1 => status.0 = sv,
                        2 => status.1 = String::from_utf8_lossy(&sdata).into_owned(),
                        _ => {}
                    }
                }
            }
            2 => payload = data,
            _ => {}
        }
    }
    Ok(if status.0 == 0 {
        Ok(payload)
    } else {
        Err(status)
    })
}
