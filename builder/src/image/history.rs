//! `image history`: the steps that made an image, newest first, with their layer sizes.

use anyhow::Result;
use skiff_specs::{Image, Store};

use super::human_size;

/// Width of the CREATED BY column; longer commands are cut, as docker does.
const CREATED_BY_WIDTH: usize = 60;

pub fn run(store: &Store, image: &str) -> Result<()> {
    let image = Image::load_host(store, image)?;
    let mut layers = image.manifest.layers.iter();
    let mut rows = Vec::new();
    for h in image.config.history.iter().flatten() {
        let size = if h.is_empty_layer() {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        };
        let by = h.created_by.clone().unwrap_or_default();
        let by: String = if by.chars().count() > CREATED_BY_WIDTH {
            by.chars().take(CREATED_BY_WIDTH - 3).collect::<String>() + "..."
        } else {
            by
        };
        let created = h.created.clone().unwrap_or_default();
        rows.push((created.get(..19).unwrap_or(&created).to_owned(), by, size));
    }
    println!(
        "{:<20} {:<w$} SIZE",
        "CREATED",
        "CREATED BY",
        w = CREATED_BY_WIDTH
    );
    for (created, by, size) in rows.iter().rev() {
        println!(
            "{created:<20} {by:<w$} {}",
            human_size(*size),
            w = CREATED_BY_WIDTH
        );
    }
    Ok(())
}
