//! `image inspect`: descriptor, manifest and config as JSON.

use anyhow::Result;
use serde_json::json;
use skiff_specs::{Image, Store};

pub fn run(store: &Store, image: &str) -> Result<()> {
    let top = store.resolve(image)?;
    let loaded = Image::load_host(store, image)?;
    let out = json!({
        "Name": image,
        "Descriptor": top,
        "Manifest": loaded.manifest,
        "Config": loaded.config,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
