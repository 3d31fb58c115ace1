//! Publishing new layer blobs in the background. Syncing a big blob to disk takes long and
//! uses no CPU, and the steps after it need only the layer's directory, not its blob: so a
//! step hands its blob to a commit thread and goes on, its layer described by a stand-in
//! ([`super::diff::PENDING`]). The thread syncs and publishes each blob, then records the
//! step's cache entry (never before its blob is in the store). The build waits for all
//! commits, fails if one failed, and swaps the stand-ins for the real descriptors.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::thread::Scope;

use skiff_specs::{Descriptor, Digest};

use super::cache::{Cache, Entry};
use super::diff::{LayerBlob, PENDING};
use super::{lock, Layer};
use crate::error::{BuildError, Result};

/// A written layer waiting to be published, and the step whose cache entry will name it.
#[derive(Debug)]
pub struct Pending<'s> {
    pub blob: LayerBlob<'s>,
    pub key: Digest,
    /// The step's time, for its cache entry.
    pub created: Option<String>,
}

#[derive(Debug, Default)]
pub struct Committer<'s> {
    /// The commit thread's queue while it runs.
    queue: Mutex<Option<Sender<Pending<'s>>>>,
    /// The first commit that failed.
    error: Mutex<Option<BuildError>>,
    /// Committed layers: diff_id → blob.
    done: Mutex<HashMap<Digest, Descriptor>>,
}

impl<'s> Committer<'s> {
    /// Starts the commit thread in `scope`; `stop` ends it once the queue is drained.
    pub fn start<'scope, 'env: 'scope>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        cache: &'env Cache,
    ) where
        's: 'env,
    {
        let (tx, rx) = channel::<Pending<'s>>();
        *lock(&self.queue) = Some(tx);
        scope.spawn(move || {
            for pending in rx {
                self.commit(pending, cache);
            }
        });
    }

    /// Closes the queue: the thread finishes what is queued and ends.
    pub fn stop(&self) {
        lock(&self.queue).take();
    }

    /// Queues `pending`, or commits it now when no thread runs.
    pub fn submit(&self, pending: Pending<'s>, cache: &Cache) {
        let pending = match lock(&self.queue).as_ref() {
            Some(tx) => match tx.send(pending) {
                Ok(()) => return,
                Err(back) => back.0,
            },
            None => pending,
        };
        self.commit(pending, cache);
    }

    /// The first failed commit, if any.
    pub fn take_error(&self) -> Option<BuildError> {
        lock(&self.error).take()
    }

    /// Gives the layers with stand-in descriptors their committed blobs.
    pub fn resolve(&self, layers: &mut [Layer]) -> Result<()> {
        let done = lock(&self.done);
        for layer in layers.iter_mut().filter(|l| l.blob.media_type == PENDING) {
            layer.blob = done.get(&layer.diff_id).cloned().ok_or_else(|| {
                BuildError::step("build", format!("layer {} was not stored", layer.diff_id))
            })?;
        }
        Ok(())
    }

    fn commit(&self, pending: Pending<'s>, cache: &Cache) {
        let diff_id = pending.blob.diff_id.clone();
        match pending.blob.commit() {
            Ok(blob) => {
                lock(&self.done).insert(diff_id.clone(), blob.clone());
                let entry = Entry {
                    layer: Some((blob, diff_id)),
                    created: pending.created,
                };
                // A cache that cannot be written costs time, not the build.
                if let Err(e) = cache.put(&pending.key, &entry) {
                    eprintln!(
                        "skiff-build: warning: writing the build cache entry {}: {e}",
                        pending.key
                    );
                }
            }
            Err(e) => {
                lock(&self.error).get_or_insert(e);
            }
        }
    }
}
