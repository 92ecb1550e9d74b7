//! What the layer downloads of every pull share: the lock each layer is
//! stored under, and whether layers go straight into containerd's content
//! store.

use crate::containerd::{Containerd, LocalContentStore};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Whether layers are written straight into containerd's local content
/// store (`containerd::LocalContentStore`) rather than streamed to it over
/// `Content.Write`. The store is looked up once; the first blob containerd
/// does not see there turns the direct path off for the rest of the process.
pub struct DirectWrites {
    enabled: bool,
    store: tokio::sync::OnceCell<Option<LocalContentStore>>,
    off: AtomicBool,
}

impl DirectWrites {
    pub fn new(enabled: bool) -> Self {
        DirectWrites {
            enabled,
            store: Default::default(),
            off: AtomicBool::new(false),
        }
    }

    /// Stream every layer from now on.
    pub(super) fn turn_off(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    pub(super) async fn store(&self, cd: &Containerd) -> Option<&LocalContentStore> {
        if !self.enabled || self.off.load(Ordering::Relaxed) {
            return None;
        }
        let found = self
            .store
            .get_or_try_init(|| cd.local_content_store())
            .await;
        match found {
            Ok(s) => s.as_ref(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up containerd's content store");
                None
            }
        }
    }
}

/// One lock per layer digest, held while a pull stores that layer: a
/// concurrent pull of another image with the same layer waits for it, then
/// finds the blob in the store, rather than download it too. (containerd
/// locks a streamed ingest by its ref as well, but a direct write puts the
/// blob in the store before it is recorded in the namespace.)
#[derive(Default)]
pub struct LayerLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// Holds a layer's lock; dropped, it releases it and forgets the entry
/// when nobody else waits.
pub(super) struct LayerGuard<'a> {
    locks: &'a LayerLocks,
    digest: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl LayerLocks {
    /// Wait for `digest`'s lock, or for `stop`.
    pub(super) async fn lock(
        &self,
        digest: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<LayerGuard<'_>> {
        let lock = {
            let mut map = self.0.lock().unwrap();
            map.entry(digest.to_string()).or_default().clone()
        };
        let guard = match lock.clone().try_lock_owned() {
            Ok(g) => Some(g),
            Err(_) => {
                tracing::debug!(layer = %digest, "layer being stored by another pull; waiting");
                let mut acquire = Box::pin(lock.lock_owned());
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => None,
                    g = &mut acquire => Some(g),
                }
            }
        };
        let Some(guard) = guard else {
            self.forget_if_unused(digest);
            return Err(stopped());
        };
        Ok(LayerGuard {
            locks: self,
            digest: digest.to_string(),
            guard: Some(guard),
        })
    }

    fn forget_if_unused(&self, digest: &str) {
        let mut map = self.0.lock().unwrap();
        if map.get(digest).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(digest);
        }
    }
}

impl Drop for LayerGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.locks.forget_if_unused(&self.digest);
    }
}

/// What a download returns when another part of the pull failed first.
pub(super) fn stopped() -> Error {
    Error::internal("pull stopped: another layer failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_pull_per_layer_and_no_entry_left() {
        let locks = LayerLocks::default();
        let (_tx, mut never) = watch::channel(false);
        let first = locks.lock("sha256:a", &mut never).await.unwrap();
        // Another layer is not held up.
        drop(locks.lock("sha256:b", &mut never).await.unwrap());
        // The same layer waits; a stop ends the wait.
        let (stop_tx, mut stop) = watch::channel(false);
        let waiting = locks.lock("sha256:a", &mut stop);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        stop_tx.send_replace(true);
        assert!(waiting.await.is_err());
        // A waiter gets it once the holder lets go.
        let second = {
            let mut w = Box::pin(locks.lock("sha256:a", &mut never));
            assert!(futures::poll!(w.as_mut()).is_pending());
            drop(first);
            w.await.unwrap()
        };
        drop(second);
        assert!(locks.0.lock().unwrap().is_empty());
    }
}
