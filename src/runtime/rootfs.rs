//! Preparing the rootfs snapshots of sandboxes and containers. A prepared snapshot that no
//! container record references yet is garbage to containerd's GC: either the
//! record is created first (it names the snapshot key), or the snapshot is
//! prepared under a short lease that is dropped once the record exists. The
//! lease is needed only for the first container of an image, whose spec
//! needs /etc/passwd and /etc/group read from the prepared rootfs; later
//! containers find them in `container::user_files`.
//!
//! Pods in a user namespace of their own get their rootfs (and image
//! volumes) on a chowned copy of the image (`container::rootfs` mounts and
//! chowns it). The copy is a committed
//! snapshot keyed by the image's chain id and the mapping, shared by every
//! pod with that mapping, and referenced from the image's config blob so
//! containerd's GC collects it with the image.

use crate::container::rootfs::{chown_copy, remapped_name, REMAP_PREFIX};
use crate::containerd::Mount;
use crate::error::{Error, Result};
use crate::network::userns::PodUserns;
use crate::runtime::Runtime;
use std::path::Path;

/// Seconds after which containerd expires the lease by itself (crash safety).
const CREATE_LEASE_SECS: u64 = 600;

const LEASE_PREFIX: &str = "crid-create-";

fn lease_id(id: &str) -> String {
    format!("{LEASE_PREFIX}{id}")
}

/// The sandbox or container id a creation lease was taken for.
pub(crate) fn created_for(lease: &str) -> Option<&str> {
    lease.strip_prefix(LEASE_PREFIX)
}

impl Runtime {
    /// Prepare the writable snapshot `id` on top of `parent` (a chain id).
    pub(crate) async fn prepare_rootfs(&self, id: &str, parent: &str) -> Result<Vec<Mount>> {
        let lease = lease_id(id);
        self.containerd
            .create_lease(&lease, CREATE_LEASE_SECS)
            .await?;
        self.containerd
            .with_lease(&lease)
            .prepare_snapshot(id, parent, crate::containerd::owner_labels())
            .await
    }

    /// Prepare the writable snapshot `id` for a container record that already
    /// names it: the record keeps it from the GC, no lease needed.
    pub(crate) async fn prepare_rootfs_of_record(
        &self,
        id: &str,
        parent: &str,
    ) -> Result<Vec<Mount>> {
        self.containerd
            .prepare_snapshot(id, parent, crate::containerd::owner_labels())
            .await
    }

    /// The snapshot to prepare a rootfs (or an image volume view) on:
    /// the image's top layer `chain_id`, or, for a pod in a user namespace
    /// of its own, the copy of it whose files belong to the mapped ids
    /// (made now if no pod with the same mapping made it before).
    /// `image_id` is the image's config digest, whose blob then
    /// references the copy for containerd's GC.
    pub(crate) async fn rootfs_parent(
        &self,
        chain_id: &str,
        image_id: &str,
        userns: Option<PodUserns>,
    ) -> Result<String> {
        let Some(userns) = userns else {
            return Ok(chain_id.to_string());
        };
        if self.idmaps_rootfs().await {
            return Ok(chain_id.to_string());
        }
        let name = remapped_name(chain_id, &userns);
        if self.containerd.stat_snapshot(&name).await?.is_some() {
            return Ok(name);
        }
        let tmp = format!("{REMAP_PREFIX}{}", crate::util::names::new_id());
        let lease = tmp.clone();
        self.containerd
            .create_lease(&lease, CREATE_LEASE_SECS)
            .await?;
        let leased = self.containerd.with_lease(&lease);
        let made = async {
            let mounts = leased
                .prepare_snapshot(&tmp, chain_id, crate::containerd::owner_labels())
                .await?;
            let target = self.config.root.join("remap").join(&tmp);
            tokio::task::spawn_blocking(move || chown_copy(&mounts, &target, userns))
                .await
                .map_err(|e| Error::internal(format!("chown of the image copy: {e}")))??;
            match leased
                .commit_snapshot(&name, &tmp, crate::containerd::owner_labels())
                .await
            {
                Ok(()) => {}
                // A pod with the same mapping made it meanwhile.
                Err(e) if e.is_already_exists() => {
                    leased.remove_snapshot(&tmp).await?;
                }
                Err(e) => return Err(e),
            }
            let mut labels = std::collections::HashMap::new();
            labels.insert(
                format!(
                    "containerd.io/gc.ref.snapshot.{}/userns-{}",
                    self.containerd.snapshotter(),
                    userns.key()
                ),
                name.clone(),
            );
            self.containerd
                .update_content_labels(image_id, labels)
                .await
        }
        .await;
        if made.is_err() {
            let _ = self.containerd.remove_snapshot(&tmp).await;
        }
        if let Err(e) = self.containerd.delete_lease(&lease).await {
            tracing::warn!(lease, error = %e, "cannot delete remap lease");
        }
        made.map_err(|e| e.context("chowned copy of the image for the pod's user namespace"))?;
        Ok(name)
    }

    /// Whether rootfs snapshots are mounted on idmapped layers here
    /// (`idmapped_rootfs`, and probed once).
    pub(crate) async fn idmaps_rootfs(&self) -> bool {
        if !self.config.idmapped_rootfs {
            return false;
        }
        let root = self.config.root.clone();
        tokio::task::spawn_blocking(move || crate::container::idmap_mounts::rootfs_supported(&root))
            .await
            .unwrap_or(false)
    }

    /// The rootfs mounts to create the task of `id` (a container or a
    /// pause container) with, in a pod's own user namespace pinned at
    /// `userns`: its snapshot on idmapped layers, where that works; else
    /// unchanged (the snapshot is then on a chowned copy of the image).
    pub(crate) async fn idmapped_rootfs_of(
        &self,
        id: &str,
        (userns, map): (&Path, PodUserns),
        mounts: Vec<Mount>,
    ) -> Result<Vec<Mount>> {
        if !self.idmaps_rootfs().await {
            return Ok(mounts);
        }
        let dir = crate::container::idmap_mounts::dir_of(&self.config.state, id);
        let userns = userns.to_path_buf();
        tokio::task::spawn_blocking(move || {
            crate::container::idmap_mounts::stage_rootfs(&dir, &userns, &mounts, map.root())
        })
        .await
        .map_err(|e| Error::internal(format!("idmapped rootfs: {e}")))?
    }

    /// Drop the creation lease: the container record holds the snapshot now
    /// (or, after a failure, the snapshot was removed).
    pub(crate) async fn release_rootfs_lease(&self, id: &str) {
        if let Err(e) = self.containerd.delete_lease(&lease_id(id)).await {
            tracing::warn!(id, error = %e, "cannot delete creation lease");
        }
    }
}
