//! Publishing new layer blobs in the background. Syncing a big blob to disk takes long and
//! uses no CPU, and the steps after it need only the layer's directory, not its blob: so a
//! step hands its blob to a commit thread and goes on. The thread syncs and publishes each
//! blob, then records the step's cache entry (never before its blob is in the store). The
//! build waits for all commits before it writes the image, and fails if one failed.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::thread::Scope;

use skiff_specs::Digest;

use super::cache::{Cache, Entry};
use super::diff::LayerBlob;
use super::lock;
use crate::error::BuildError;

/// A written layer waiting to be published, and the cache entry that names it.
#[derive(Debug)]
pub struct Pending<'s> {
    pub blob: LayerBlob<'s>,
    pub key: Digest,
    pub entry: Entry,
}

#[derive(Debug, Default)]
pub struct Committer<'s> {
    /// The commit thread's queue while it runs.
    queue: Mutex<Option<Sender<Pending<'s>>>>,
    /// The first commit that failed.
    error: Mutex<Option<BuildError>>,
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

    fn commit(&self, pending: Pending<'s>, cache: &Cache) {
        match pending.blob.commit() {
            Ok(()) => {
                // A cache that cannot be written costs time, not the build.
                if let Err(e) = cache.put(&pending.key, &pending.entry) {
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
