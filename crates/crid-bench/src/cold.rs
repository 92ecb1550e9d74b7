//! Cold pulls: before each timed pull, run containerd's garbage collection
//! synchronously and check that nothing of the pulled image is left in any
//! containerd namespace (content records, snapshots, blob files on disk).
//!
//! containerd keeps one blob per digest for all namespaces and collects it
//! only when no namespace (image, lease, container) references it any more;
//! after an image is removed the collection is asynchronous. Without this a
//! round may find the layers of an earlier round and measure only the unpack.
//! Talks to containerd directly; it never touches objects of the systems
//! under test, except a throwaway image record in its own namespace.

use anyhow::{anyhow, Context, Result};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots as snap;
use containerd_client::types::Descriptor;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Code;

/// Namespace of the throwaway image record whose synchronous delete runs GC.
const GC_NAMESPACE: &str = "crid-bench-gc";
const GC_IMAGE: &str = "crid-bench/gc-trigger";

/// What a cold pull must not find: the image's layer digests and the chain
/// IDs its unpacked snapshots are committed under.
#[derive(Debug, Clone, Default)]
pub struct ImageLayers {
    pub digests: Vec<String>,
    pub chain_ids: Vec<String>,
}

impl ImageLayers {
    /// From the compressed layer digests and the config's diff IDs (in order).
    pub fn new(digests: Vec<String>, diff_ids: &[String]) -> Self {
        ImageLayers {
            digests,
            chain_ids: chain_ids(diff_ids),
        }
    }
}

/// chainID[0] = diffID[0]; chainID[n] = sha256(chainID[n-1] + " " + diffID[n]).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

fn in_ns<T>(ns: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = ns.parse() {
        req.metadata_mut().insert("containerd-namespace", v);
    }
    req
}

pub struct Collector {
    channel: Channel,
    /// containerd's root, to check the blob files themselves.
    root: Option<PathBuf>,
    snapshotter: String,
}

impl Collector {
    pub async fn connect(address: &Path, root: Option<PathBuf>, snapshotter: &str) -> Result<Self> {
        let channel = crid::util::unix_grpc::connect(address)
            .await
            .with_context(|| format!("connect containerd at {}", address.display()))?;
        Ok(Collector {
            channel,
            root,
            snapshotter: snapshotter.into(),
        })
    }

    /// Run containerd's GC now and wait until it is done: containerd 1.6 has
    /// no GC call, but `Images.Delete` with `sync` collects before it returns.
    pub async fn gc(&self) -> Result<()> {
        let mut images = api::images_client::ImagesClient::new(self.channel.clone());
        let image = api::Image {
            name: GC_IMAGE.into(),
            // A manifest that never exists: the record references nothing.
            target: Some(Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(b"crid-bench gc trigger"))
                ),
                size: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        match images
            .create(in_ns(
                GC_NAMESPACE,
                api::CreateImageRequest {
                    image: Some(image),
                    source_date_epoch: None,
                },
            ))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => return Err(anyhow!("Images.Create {GC_IMAGE}: {s}")),
        }
        images
            .delete(in_ns(
                GC_NAMESPACE,
                api::DeleteImageRequest {
                    name: GC_IMAGE.into(),
                    sync: true,
                    target: None,
                },
            ))
            .await
            .map_err(|s| anyhow!("Images.Delete {GC_IMAGE} (sync): {s}"))?;
        Ok(())
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        let mut c = api::namespaces_client::NamespacesClient::new(self.channel.clone());
        let list = c
            .list(api::ListNamespacesRequest::default())
            .await
            .map_err(|s| anyhow!("Namespaces.List: {s}"))?;
        Ok(list
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect())
    }

    /// Everything of `layers` containerd still holds, one finding per
    /// namespace (empty: a pull now is cold). Leases holding any of it are
    /// named too.
    pub async fn leftovers(&self, layers: &ImageLayers) -> Result<Vec<String>> {
        let mut out = vec![];
        let namespaces = self.namespaces().await?;
        let mut content = api::content_client::ContentClient::new(self.channel.clone());
        let mut snapshots = snap::snapshots_client::SnapshotsClient::new(self.channel.clone());
        for ns in &namespaces {
            let mut blobs = 0;
            for d in &layers.digests {
                match content
                    .info(in_ns(ns, api::InfoRequest { digest: d.clone() }))
                    .await
                {
                    Ok(_) => blobs += 1,
                    Err(s) if s.code() == Code::NotFound => {}
                    Err(s) => return Err(anyhow!("Content.Info {d} in {ns}: {s}")),
                }
            }
            let mut snaps = 0;
            for c in &layers.chain_ids {
                let req = snap::StatSnapshotRequest {
                    snapshotter: self.snapshotter.clone(),
                    key: c.clone(),
                };
                match snapshots.stat(in_ns(ns, req)).await {
                    Ok(_) => snaps += 1,
                    Err(s) if s.code() == Code::NotFound => {}
                    Err(s) => return Err(anyhow!("Snapshots.Stat {c} in {ns}: {s}")),
                }
            }
            if blobs + snaps > 0 {
                out.push(format!(
                    "namespace {ns} had {blobs}/{} layers and {snaps}/{} snapshots",
                    layers.digests.len(),
                    layers.chain_ids.len()
                ));
            }
        }
        if let Some(root) = &self.root {
            let dir = root.join("io.containerd.content.v1.content/blobs/sha256");
            let files = layers
                .digests
                .iter()
                .filter(|d| dir.join(d.strip_prefix("sha256:").unwrap_or(d)).exists())
                .count();
            if files > 0 {
                out.push(format!(
                    "{files}/{} layer blob files were on disk",
                    layers.digests.len()
                ));
            }
        }
        if !out.is_empty() {
            out.extend(self.leases_holding(&namespaces, layers).await?);
        }
        Ok(out)
    }

    /// Leases (in any namespace) whose resources include `layers`.
    async fn leases_holding(
        &self,
        namespaces: &[String],
        layers: &ImageLayers,
    ) -> Result<Vec<String>> {
        let ids: HashSet<&String> = layers.digests.iter().chain(&layers.chain_ids).collect();
        let mut leases = api::leases_client::LeasesClient::new(self.channel.clone());
        let mut out = vec![];
        for ns in namespaces {
            let list = leases
                .list(in_ns(ns, api::ListRequest::default()))
                .await
                .map_err(|s| anyhow!("Leases.List in {ns}: {s}"))?
                .into_inner()
                .leases;
            for l in list {
                let res = leases
                    .list_resources(in_ns(ns, api::ListResourcesRequest { id: l.id.clone() }))
                    .await
                    .map_err(|s| anyhow!("Leases.ListResources {} in {ns}: {s}", l.id))?
                    .into_inner()
                    .resources;
                let n = res.iter().filter(|r| ids.contains(&r.id)).count();
                if n > 0 {
                    let expire = l
                        .labels
                        .get("containerd.io/gc.expire")
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default();
                    out.push(format!(
                        "lease {} in namespace {ns} holds {n} of them{expire}",
                        l.id
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Collect until nothing of `layers` is left or `patience` has passed;
    /// returns what is still left (empty: cold).
    pub async fn collect(&self, layers: &ImageLayers, patience: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + patience;
        loop {
            self.gc().await?;
            let left = self.leftovers(layers).await?;
            if left.is_empty() || Instant::now() >= deadline {
                return Ok(left);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        let want = hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()));
        assert_eq!(ids[1], format!("sha256:{want}"));
        assert!(chain_ids(&[]).is_empty());
    }
}
