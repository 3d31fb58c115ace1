//! Images in the engine's store: `images`, `tag`, `rmi`, `history`.

use anyhow::{bail, Result};
use clap::Args;
use skiff_specs::{Digest, Image, Platform};

use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show untagged images too
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show only images matching REPOSITORY[:TAG]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove the image even if a stopped container uses it
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub image: String,
}

/// docker's size format (powers of 1000).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + units[i]
    }
}

/// `name:tag` as docker shows a stored name; `<none>` when unnamed.
fn split_name(name: Option<&str>) -> (String, String) {
    match name {
        None => ("<none>".to_owned(), "<none>".to_owned()),
        Some(n) => match n.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (r.to_owned(), t.to_owned()),
            None => (n.to_owned(), "latest".to_owned()),
        },
    }
}

pub fn images(engine: &Engine, a: ImagesArgs) -> Result<i32> {
    let store = engine.store()?;
    let host = Platform::host();
    let mut rows = Vec::new();
    for entry in store.list()? {
        if entry.name.is_none() && !a.all {
            continue;
        }
        let (repo, tag) = split_name(entry.name.as_deref());
        if let Some(want) = &a.repository {
            let (wr, wt) = want.split_once(':').unwrap_or((want, ""));
            if repo != wr || (!wt.is_empty() && tag != wt) {
                continue;
            }
        }
        let Ok(img) = Image::load(&store, &entry.descriptor, &host) else {
            continue;
        };
        let id = img.manifest.config.digest.to_string();
        let short = id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>();
        let created = img
            .config
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| {
                let d = chrono::Utc::now().signed_duration_since(t.with_timezone(&chrono::Utc));
                format!("{} ago", crate::container::status::human_duration(d))
            })
            .unwrap_or_default();
        let size: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
        rows.push((repo, tag, short, created, human_size(size)));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r.2);
        }
        return Ok(0);
    }
    println!(
        "{:<40} {:<12} {:<14} {:<18} SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    );
    for (repo, tag, id, created, size) in rows {
        println!("{repo:<40} {tag:<12} {id:<14} {created:<18} {size}");
    }
    Ok(0)
}

pub fn tag(engine: &Engine, a: TagArgs) -> Result<i32> {
    let store = engine.store()?;
    let desc = store
        .resolve(&a.source)
        .map_err(|_| anyhow::anyhow!("No such image: {}", a.source))?;
    store.tag(&skiff_builder::export::normalize_tag(&a.target), &desc)?;
    Ok(0)
}

pub fn rmi(engine: &Engine, a: RmiArgs) -> Result<i32> {
    let store = engine.store()?;
    let containers = engine.containers.list()?;
    let mut failed = false;
    for image in &a.images {
        let result = (|| -> Result<()> {
            let reference = if Digest::parse(image).is_ok() || store.resolve(image).is_ok() {
                image.clone()
            } else {
                skiff_builder::export::normalize_tag(image)
            };
            let desc = store
                .resolve(&reference)
                .map_err(|_| anyhow::anyhow!("No such image: {image}"))?;
            let users: Vec<&str> = containers
                .iter()
                .filter(|c| c.manifest.digest == desc.digest)
                .map(|c| c.name.as_str())
                .collect();
            // The same image under another name keeps the containers' image.
            let other_names = store
                .list()?
                .iter()
                .filter(|i| {
                    i.descriptor.digest == desc.digest && i.name.as_deref() != Some(&reference)
                })
                .count();
            if !users.is_empty() && other_names == 0 && !a.force {
                bail!(
                    "conflict: unable to remove repository reference \"{image}\" - container {} is using its referenced image",
                    users.join(", ")
                );
            }
            for r in store.remove(&reference)? {
                println!(
                    "Untagged: {}",
                    r.name
                        .as_deref()
                        .unwrap_or(&r.descriptor.digest.to_string())
                );
            }
            if !users.is_empty() && other_names == 0 {
                // Kept unnamed: the containers still need it.
                store.add_unnamed(&desc)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("Error: {e:#}");
            failed = true;
        }
    }
    let _ = store.gc();
    let keep = super::system::needed_layers(&store, &containers);
    let _ = crate::snapshots::open(engine)?.gc(&keep);
    Ok(i32::from(failed))
}

pub fn history(engine: &Engine, a: HistoryArgs) -> Result<i32> {
    let store = engine.store()?;
    let image = crate::image::load_local(&store, &a.image)
        .map_err(|_| anyhow::anyhow!("No such image: {}", a.image))?;
    let mut layers = image.manifest.layers.iter();
    let mut rows = Vec::new();
    for h in image.config.history.iter().flatten() {
        let size = if h.is_empty_layer() {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        };
        let by = h.created_by.clone().unwrap_or_default();
        let by: String = if by.chars().count() > 45 {
            by.chars().take(44).collect::<String>() + "…"
        } else {
            by
        };
        rows.push((
            h.created.clone().unwrap_or_default(),
            by,
            size,
            h.comment.clone().unwrap_or_default(),
        ));
    }
    println!(
        "{:<14} {:<22} {:<46} {:<10} COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    );
    let id: String = image
        .manifest
        .config
        .digest
        .to_string()
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    for (i, (created, by, size, comment)) in rows.iter().rev().enumerate() {
        let shown = if i == 0 { id.as_str() } else { "<missing>" };
        let created = created.get(..19).unwrap_or(created);
        println!(
            "{shown:<14} {created:<22} {by:<46} {:<10} {comment}",
            human_size(*size)
        );
    }
    Ok(0)
}
