//! Unpacking an image's layers (already in the content store) into
//! committed snapshots named by chain id: `Snapshots.Prepare` on the parent
//! chain, `Diff.Apply`, `Snapshots.Commit`. Call it with a leased client so
//! nothing is collected before the image record references it.

use super::manifest::{self, Desc};
use crate::containerd::{Containerd, Descriptor};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Unpack `layers` (with their `diff_ids`); returns the top chain id.
/// Snapshots that already exist are reused.
pub async fn unpack(cd: &Containerd, layers: &[Desc], diff_ids: &[String]) -> Result<String> {
    if layers.len() != diff_ids.len() {
        return Err(Error::invalid("layers and diff_ids differ in number"));
    }
    let chains = manifest::chain_ids(diff_ids);
    // Find the highest layer already unpacked.
    let mut start = chains.len();
    while start > 0 && cd.stat_snapshot(&chains[start - 1]).await?.is_none() {
        start -= 1;
    }
    for i in start..chains.len() {
        let parent = if i == 0 { "" } else { chains[i - 1].as_str() };
        apply_layer(cd, &layers[i], &diff_ids[i], parent, &chains[i]).await?;
    }
    Ok(chains.last().cloned().unwrap_or_default())
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
    let mounts = cd.prepare_snapshot(&key, parent, labels).await?;
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
            Ok(())
        }
        Err(e) => {
            let _ = cd.remove_snapshot(&key).await;
            Err(e)
        }
    }
}
