//! A private containerd 1.6 whose tasks run under skiff's own shim,
//! `containerd-shim-skiff-v2` (runtime io.containerd.skiff.v2): the shim is
//! linked into the private bin dir on containerd's PATH, and its runtime
//! options (a JSON file passed with --runtime-config-path) point it at the
//! logging skiff wrapper and a private state root. Dropping it drops the
//! containerd harness, which kills what is left and unmounts everything.

use std::ffi::OsString;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Output;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::client::Client;
use crate::containerd::Containerd;
use crate::{bin, wait_until};

/// The runtime name containerd maps to the shim binary.
pub const RUNTIME: &str = "io.containerd.skiff.v2";
pub const SHIM: &str = "containerd-shim-skiff-v2";

pub struct ShimContainerd {
    ctd: Containerd,
    options: PathBuf,
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
        let ctd = Containerd::start_with(true)?;
        symlink(&shim, ctd.bin_dir().join(SHIM)).context("cannot link the shim")?;
        let options = ctd.tmp.path().join("shim-options.json");
        let opts = json!({
            "BinaryName": ctd.bin_dir().join("skiff"),
            "Root": ctd.tmp.path().join("runc"),
        });
        fs::write(&options, opts.to_string())?;
        Ok(Self { ctd, options })
    }

    /// `ctr run` flags for the skiff shim, with private FIFOs and cgroups.
    pub fn run_flags(&self, id: &str) -> Vec<OsString> {
        vec![
            "--runtime".into(),
            RUNTIME.into(),
            "--runtime-config-path".into(),
            self.options.clone().into(),
            "--fifo-dir".into(),
            self.ctd.tmp.path().join("fifo").into(),
            "--cgroup".into(),
            format!("/{}/{id}", self.ctd.namespace).into(),
        ]
    }

    /// `ctr run SHIM_FLAGS ARGS...`.
    pub fn ctr_run(&self, id: &str, args: &[&str]) -> Result<Output> {
        let mut all: Vec<OsString> = vec!["run".into()];
        all.extend(self.run_flags(id));
        all.extend(args.iter().map(OsString::from));
        self.run(all)
    }

    /// `ctr run --detach` of `args` (IMAGE ID CMD...), failing loudly.
    pub fn run_detached(&self, id: &str, args: &[&str]) -> Result<()> {
        let mut all = vec!["--detach"];
        all.extend_from_slice(args);
        let out = self.ctr_run(id, &all)?;
        if !out.status.success() {
            bail!(
                "ctr run -d {id}: {}: {}\nskiff calls:\n{}\ncontainerd log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.calls(),
                self.log()
            );
        }
        self.wait_task(id, "RUNNING")
    }

    /// `ctr task exec --exec-id EXEC ID CMD...` with private FIFOs.
    pub fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Result<Output> {
        let fifo = self.ctd.tmp.path().join("fifo");
        let mut args: Vec<OsString> = ["task", "exec", "--exec-id", exec_id, "--fifo-dir"]
            .map(OsString::from)
            .into();
        args.push(fifo.into());
        args.push(id.into());
        args.extend(cmd.iter().map(OsString::from));
        self.run(args)
    }

    /// Waits for the shims to be gone (they exit after containerd's Shutdown),
    /// then checks that nothing at all is left.
    pub fn assert_clean_soon(&self) -> Result<()> {
        let _ = wait_until(5, "the shims to exit", || self.shims().is_empty());
        self.assert_clean()
    }
}
