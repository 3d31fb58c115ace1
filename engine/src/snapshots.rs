//! The engine's layer snapshot area (shared with skiff-build's unpack).

use anyhow::{Context, Result};
use skiff_specs::snapshots::Snapshots;

use crate::engine::Engine;

pub fn open(engine: &Engine) -> Result<Snapshots> {
    let dir = engine.layout.snapshots();
    Snapshots::open(&dir).with_context(|| format!("cannot open the snapshots at {}", dir.display()))
}
