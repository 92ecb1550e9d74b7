//! Unpacking an image's layers (already in the content store) into
//! committed snapshots named by chain id: `Snapshots.Prepare` on the parent
//! chain, `Diff.Apply`, `Snapshots.Commit`. Call it with a leased client so
//! nothing is collected before the image record references it.

use super::manifest::{self, Desc};
use crate::containerd::{Containerd, Descriptor};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Unpack `layers` (with their `diff_ids`), all already in the content
/// store; returns the top chain id. Snapshots that already exist are reused.
pub async fn unpack(cd: &Containerd, layers: &[Desc], diff_ids: &[String]) -> Result<String> {
    let mut u = Unpacker::new(cd, layers, diff_ids).await?;
    while !u.done() {
        u.apply_next().await?;
    }
    Ok(u.top())
}

/// Applies an image's layers bottom-up, one call per layer, so a pull can
/// unpack layer `i` as soon as it (and every layer below it) is stored while
/// later layers still download. Starts above the highest chain snapshot that
/// already exists.
pub struct Unpacker<'a> {
    cd: &'a Containerd,
    layers: &'a [Desc],
    diff_ids: &'a [String],
    chains: Vec<String>,
    next: usize,
}

impl<'a> Unpacker<'a> {
    pub async fn new(
        cd: &'a Containerd,
        layers: &'a [Desc],
        diff_ids: &'a [String],
    ) -> Result<Unpacker<'a>> {
        if layers.len() != diff_ids.len() {
            return Err(Error::invalid("layers and diff_ids differ in number"));
        }
        let chains = manifest::chain_ids(diff_ids);
        // Find the highest layer already unpacked, and lease it: found by
        // `Stat` alone, a snapshot nothing references (left by an
        // interrupted pull, or of a removed image) could be collected
        // before the next layer is prepared on it. Its parents are kept
        // through it.
        let mut next = chains.len();
        while next > 0 {
            let chain = &chains[next - 1];
            if cd.stat_snapshot(chain).await?.is_some() {
                cd.lease_snapshot(chain).await?;
                // Leased now; still there means kept.
                if cd.stat_snapshot(chain).await?.is_some() {
                    tracing::debug!(%chain, layers = next, "reusing unpacked layers");
                    break;
                }
            }
            next -= 1;
        }
        Ok(Unpacker {
            cd,
            layers,
            diff_ids,
            chains,
            next,
        })
    }

    /// Index of the layer `apply_next` unpacks.
    pub fn next(&self) -> usize {
        self.next
    }

    pub fn done(&self) -> bool {
        self.next >= self.chains.len()
    }

    /// The top chain id: the image's rootfs parent once `done`.
    pub fn top(&self) -> String {
        self.chains.last().cloned().unwrap_or_default()
    }

    /// Unpack layer `next()` onto the chain below it; its blob must be in
    /// the content store.
    pub async fn apply_next(&mut self) -> Result<()> {
        let i = self.next;
        if self.done() {
            return Err(Error::internal("every layer is unpacked"));
        }
        let parent = if i == 0 {
            ""
        } else {
            self.chains[i - 1].as_str()
        };
        apply_layer(
            self.cd,
            &self.layers[i],
            &self.diff_ids[i],
            parent,
            &self.chains[i],
        )
        .await?;
        self.next += 1;
        Ok(())
    }
}

async fn apply_layer(
    cd: &Containerd,
    layer: &Desc,
    diff_id: &str,
    parent: &str,
    chain: &str,
) -> Result<()> {
    let key = format!(
        "extract-{}-{}",
        rand::random::<u32>(),
        chain.trim_start_matches("sha256:")
    );
    let labels = HashMap::from([("containerd.io/snapshot.ref".to_string(), chain.to_string())]);
    let mounts = match cd.prepare_snapshot(&key, parent, labels).await {
        Ok(m) => m,
        // containerd checks the `snapshot.ref` target: another unpack of the
        // same layer (a pull of another image) committed it meanwhile.
        Err(e) if e.is_already_exists() => {
            tracing::debug!(layer = %layer.digest, chain, "layer unpacked by another pull");
            return cd.lease_snapshot(chain).await;
        }
        Err(e) => return Err(e),
    };
    let result = async {
        let applied = cd
            .apply_diff(
                Descriptor {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                    annotations: HashMap::new(),
                },
                mounts,
            )
            .await?;
        if applied.digest != diff_id {
            return Err(Error::internal(format!(
                "layer {} unpacked to {}, config says {diff_id}",
                layer.digest, applied.digest
            )));
        }
        cd.commit_snapshot(chain, &key, HashMap::new()).await
    }
    .await;
    match result {
        Ok(()) => {
            tracing::debug!(layer = %layer.digest, chain, "layer unpacked");
            Ok(())
        }
        // Another unpack of the same layer won the race: theirs is as good.
        Err(e) if e.is_already_exists() => {
            cd.remove_snapshot(&key).await?;
            cd.lease_snapshot(chain).await
        }
        Err(e) => {
            let _ = cd.remove_snapshot(&key).await;
            Err(e)
        }
    }
}
