//! `image push`: an image of the store to a registry.

use anyhow::Result;
use skiff_builder::export::normalize_tag;
use skiff_builder::registry;
use skiff_specs::registry::ClientOptions;
use skiff_specs::Store;

pub fn run(
    options: &ClientOptions,
    store: &Store,
    image: &str,
    target: Option<&str>,
) -> Result<()> {
    let target = registry::reference("target", target.unwrap_or(image))?;
    let local = if store.resolve(image).is_ok() {
        image.to_owned()
    } else {
        normalize_tag(image)
    };
    let pushed = registry::push(options, store, &local, &target)?;
    // The store now knows the image under its registry name too (as docker's tag before a
    // push would): later pushes to that registry can mount its blobs from there.
    if target.tag.is_some() {
        let descriptor = store.resolve(&local)?;
        store.tag(&target.to_string(), &descriptor)?;
    }
    eprintln!(
        "{} blobs uploaded, {} mounted, {} already there",
        pushed.uploaded, pushed.mounted, pushed.skipped
    );
    match pushed.digest {
        Some(d) => println!("{}@{d}", target.name()),
        None => println!("{target}"),
    }
    Ok(())
}
