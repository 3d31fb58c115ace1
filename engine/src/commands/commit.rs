//! `commit`: a new image from a container's changes: its writable layer on
//! top of its image's layers, with the container's config.

use anyhow::{Context, Result};
use clap::Args;
use skiff_builder::compress::LayerCompression;
use skiff_specs::media_type::{OCI_CONFIG, OCI_MANIFEST};
use skiff_specs::{History, Image, ImageManifest, Platform};

use crate::container::status;
use crate::engine::Engine;
use crate::lock;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause the container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}

pub fn run(engine: &Engine, a: CommitArgs) -> Result<i32> {
    let found = engine.containers.find(&a.container)?;
    let _lock = lock::container(&engine.layout.locks(), &found.id)?;
    let c = engine.containers.load(&found.id)?;
    let dir = engine.containers.dir(&c.id);
    let store = engine.store()?;
    let _lease = store.lease()?;
    let image = Image::load(&store, &c.manifest, &Platform::host())
        .with_context(|| format!("the image of container {}", c.name))?;

    // A running container is paused so the layer is one consistent state.
    let st = status::current(&dir);
    let monitor = (a.pause && st.status == skiff_specs::monitor::Status::Running)
        .then(|| engine.monitor.connect(&dir.bundle(), &c.id))
        .transpose()?;
    if let Some(m) = &monitor {
        m.pause()?;
    }
    let layer = skiff_builder::execute::diff::write_layer(
        &store,
        &dir.upper(),
        None,
        LayerCompression::default(),
    )
    .and_then(|l| {
        let diff_id = l.diff_id.clone();
        l.commit().map(|d| (diff_id, d))
    });
    if let Some(m) = &monitor {
        let _ = m.resume();
    }
    let (diff_id, layer) = layer?;

    let now = skiff_specs::jsonlog::format_time(chrono::Utc::now());
    let mut config = image.config.clone();
    config.created = Some(now.clone());
    if let Some(author) = &a.author {
        config.author = Some(author.clone());
    }
    let mut cc = config.container_config();
    if let Some(cmd) = &c.config.cmd {
        cc.cmd = Some(cmd.clone());
    }
    if let Some(ep) = &c.config.entrypoint {
        cc.entrypoint = Some(ep.clone());
    }
    if !c.config.env.is_empty() {
        let mut env = cc.env.clone().unwrap_or_default();
        for e in &c.config.env {
            let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
            env.push(e.clone());
        }
        cc.env = Some(env);
    }
    if let Some(w) = &c.config.working_dir {
        cc.working_dir = Some(w.clone());
    }
    if let Some(u) = &c.config.user {
        cc.user = Some(u.clone());
    }
    if !c.config.labels.is_empty() {
        cc.labels
            .get_or_insert_with(Default::default)
            .extend(c.config.labels.clone());
    }
    config.config = Some(cc);
    config.rootfs.diff_ids.push(diff_id);
    config.history.get_or_insert_with(Vec::new).push(History {
        created: Some(now),
        created_by: Some(format!("skiffctl commit {}", c.name)),
        author: a.author.clone(),
        comment: a.message.clone(),
        empty_layer: None,
    });
    let config_desc = store.put_json(OCI_CONFIG, &config)?;
    let mut layers = image.manifest.layers.clone();
    layers.push(layer);
    let manifest = ImageManifest::new_oci(config_desc.clone(), layers);
    let manifest_desc = store.put_json(OCI_MANIFEST, &manifest)?;
    match &a.repository {
        Some(r) => {
            store.tag(&skiff_builder::export::normalize_tag(r), &manifest_desc)?;
        }
        None => store.add_unnamed(&manifest_desc)?,
    }
    println!("{}", config_desc.digest);
    Ok(0)
}
