//! Making layers in the background. Once a step has run, its upper directory is final: the
//! later steps mount it read-only as a lower layer and need nothing else from it. So the
//! step hands the directory to a layer thread and the stage goes on; the thread tars,
//! compresses and hashes it, syncs and publishes the blob, and only then records the step's
//! cache entry. Until then the layer carries a stand-in descriptor and diff_id (media type
//! [`PENDING`]); the build waits for all layers, fails if one failed, and swaps the
//! stand-ins for the real values before it writes the image.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::thread::Scope;

use skiff_specs::{Descriptor, Digest, Store};

use super::cache::{Cache, Entry};
use super::diff::write_layer;
use super::{lock, Layer};
use crate::compress::LayerCompression;
use crate::error::{BuildError, Result};

/// The media type of a layer's descriptor until its blob is in the store.
const PENDING: &str = "application/vnd.skiff.layer.pending";

/// A finished step's upper directory, to become a layer.
#[derive(Debug)]
pub struct Job {
    pub upper: PathBuf,
    /// SOURCE_DATE_EPOCH: the cap for entry mtimes.
    pub clamp: Option<u64>,
    pub compression: LayerCompression,
    /// The step's cache key and time, for its cache entry.
    pub key: Digest,
    pub created: Option<String>,
    /// The stand-in, unique in the build: the digest of the stand-in descriptor and diff_id.
    pub id: Digest,
}

impl Job {
    /// The layer as the stage carries it until the job is done.
    pub fn stand_in(&self) -> Layer {
        Layer {
            blob: Descriptor::new(PENDING, self.id.clone(), 0),
            diff_id: self.id.clone(),
            dir: self.upper.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Committer {
    /// The layer thread's queue while it runs.
    queue: Mutex<Option<Sender<Job>>>,
    /// The first layer that failed.
    error: Mutex<Option<BuildError>>,
    /// Finished layers: stand-in id → (blob, diff_id).
    done: Mutex<HashMap<Digest, (Descriptor, Digest)>>,
}

impl Committer {
    /// Starts the layer thread in `scope`; `stop` ends it once the queue is drained.
    pub fn start<'scope, 'env: 'scope>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        store: &'env Store,
        cache: &'env Cache,
    ) {
        let (tx, rx) = channel::<Job>();
        *lock(&self.queue) = Some(tx);
        scope.spawn(move || {
            for job in rx {
                self.make(job, store, cache);
            }
        });
    }

    /// Closes the queue: the thread finishes what is queued and ends.
    pub fn stop(&self) {
        lock(&self.queue).take();
    }

    /// Queues `job`, or does it now when no thread runs.
    pub fn submit(&self, job: Job, store: &Store, cache: &Cache) {
        let job = match lock(&self.queue).as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(back) => back.0,
            },
            None => job,
        };
        self.make(job, store, cache);
    }

    /// The first failed layer, if any.
    pub fn take_error(&self) -> Option<BuildError> {
        lock(&self.error).take()
    }

    /// Gives the layers with stand-ins their real blob and diff_id.
    pub fn resolve(&self, layers: &mut [Layer]) -> Result<()> {
        let done = lock(&self.done);
        for layer in layers.iter_mut().filter(|l| l.blob.media_type == PENDING) {
            let (blob, diff_id) = done.get(&layer.blob.digest).cloned().ok_or_else(|| {
                BuildError::step(
                    "build",
                    format!("the layer of {} was not stored", layer.dir.display()),
                )
            })?;
            layer.blob = blob;
            layer.diff_id = diff_id;
        }
        Ok(())
    }

    fn make(&self, job: Job, store: &Store, cache: &Cache) {
        let made = write_layer(store, &job.upper, job.clamp, job.compression).and_then(|layer| {
            let diff_id = layer.diff_id.clone();
            Ok((layer.commit()?, diff_id))
        });
        match made {
            Ok((blob, diff_id)) => {
                lock(&self.done).insert(job.id, (blob.clone(), diff_id.clone()));
                let entry = Entry {
                    layer: Some((blob, diff_id)),
                    created: job.created,
                };
                // A cache that cannot be written costs time, not the build.
                if let Err(e) = cache.put(&job.key, &entry) {
                    eprintln!(
                        "skiff-build: warning: writing the build cache entry {}: {e}",
                        job.key
                    );
                }
            }
            Err(e) => {
                lock(&self.error).get_or_insert(e);
            }
        }
    }
}
