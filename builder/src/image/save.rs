//! `image save`: images to an OCI or docker archive.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::{Context, Result};
use skiff_specs::archive::{export_docker_archive, export_oci_archive};
use skiff_specs::{Platform, Store};

use crate::cli::{ArchiveFormat, SaveArgs};

pub fn run(store: &Store, args: &SaveArgs) -> Result<()> {
    let refs: Vec<&str> = args.images.iter().map(String::as_str).collect();
    // Written beside the destination and renamed, so a failure leaves nothing behind.
    let dir = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let out = BufWriter::new(temp.reopen()?);
    let mut out = match args.format {
        ArchiveFormat::Oci => export_oci_archive(store, &refs, out)?,
        ArchiveFormat::Docker => export_docker_archive(store, &refs, &Platform::host(), out)?,
    };
    out.flush()?;
    let file: File = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    temp.persist(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}
