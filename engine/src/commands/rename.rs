//! `rename`: a new name for a container.

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::Engine;
use crate::{ids, lock};

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub fn run(engine: &Engine, a: RenameArgs) -> Result<i32> {
    let new = a.new_name.trim_start_matches('/');
    if !ids::valid_name(new) {
        bail!("Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    let _engine_lock = lock::engine(&engine.layout.locks())?;
    let found = engine.containers.find(&a.container)?;
    let _lock = lock::container(&engine.layout.locks(), &found.id)?;
    if let Some(other) = engine.containers.name_taken(new)? {
        bail!(
            "Conflict. The container name \"/{new}\" is already in use by container \"{}\"",
            other.id
        );
    }
    let mut c = engine.containers.load(&found.id)?;
    c.name = new.to_owned();
    engine.containers.save(&c)?;
    Ok(0)
}
