//! containerd `Snapshots` service (always the configured snapshotter).

use super::{api, Containerd, Mount};
use crate::error::{Error, Result};
use api::snapshots::snapshots_client::SnapshotsClient;
pub use api::snapshots::Info as SnapshotInfo;
use std::collections::HashMap;

impl Containerd {
    fn snapshots(&self) -> SnapshotsClient<super::Svc> {
        SnapshotsClient::new(self.svc())
    }

    /// Prepare an active (writable) snapshot `key` on top of `parent`.
    pub async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        let resp = self
            .snapshots()
            .prepare(api::snapshots::PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
                parent: parent.into(),
                labels,
            })
            .await
            .map_err(|s| Error::containerd("Snapshots.Prepare", s))?;
        Ok(resp.into_inner().mounts)
    }

    /// Mounts of an existing snapshot.
    pub async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let resp = self
            .snapshots()
            .mounts(api::snapshots::MountsRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            })
            .await
            .map_err(|s| Error::containerd("Snapshots.Mounts", s))?;
        Ok(resp.into_inner().mounts)
    }

    pub async fn view_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        let resp = self
            .snapshots()
            .view(api::snapshots::ViewSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
                parent: parent.into(),
                labels,
            })
            .await
            .map_err(|s| Error::containerd("Snapshots.View", s))?;
        Ok(resp.into_inner().mounts)
    }

    pub async fn commit_snapshot(
        &self,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        self.snapshots()
            .commit(api::snapshots::CommitSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                name: name.into(),
                key: key.into(),
                labels,
            })
            .await
            .map_err(|s| Error::containerd("Snapshots.Commit", s))?;
        Ok(())
    }

    /// Remove snapshot `key`; a missing one is not an error.
    ///
    /// Remove a container's rootfs snapshot before the container record
    /// that references it, as containerd's own client does
    /// (`WithSnapshotCleanup`). Between the two, the snapshot would be
    /// unreferenced, and when containerd 1.6's GC collects a snapshot it
    /// leaves it in its parent's list of children: the parent (an image
    /// layer) can then no longer be removed by `Snapshots.Remove` ("cannot
    /// remove snapshot with child"), only by the GC.
    pub async fn remove_snapshot(&self, key: &str) -> Result<()> {
        match self
            .snapshots()
            .remove(api::snapshots::RemoveSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Snapshots.Remove", s)),
        }
    }

    /// Snapshot info, `None` when absent.
    pub async fn stat_snapshot(&self, key: &str) -> Result<Option<SnapshotInfo>> {
        match self
            .snapshots()
            .stat(api::snapshots::StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().info),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::containerd("Snapshots.Stat", s)),
        }
    }

    pub async fn list_snapshots(&self, filters: Vec<String>) -> Result<Vec<SnapshotInfo>> {
        use futures::StreamExt;
        let mut stream = self
            .snapshots()
            .list(api::snapshots::ListSnapshotsRequest {
                snapshotter: self.snapshotter.clone(),
                filters,
            })
            .await
            .map_err(|s| Error::containerd("Snapshots.List", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            out.extend(
                item.map_err(|s| Error::containerd("Snapshots.List", s))?
                    .info,
            );
        }
        Ok(out)
    }

    /// Bytes and inodes used by a snapshot.
    pub async fn snapshot_usage(&self, key: &str) -> Result<(i64, i64)> {
        let r = self
            .snapshots()
            .usage(api::snapshots::UsageRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.into(),
            })
            .await
            .map_err(|s| Error::containerd("Snapshots.Usage", s))?
            .into_inner();
        Ok((r.size, r.inodes))
    }

    /// Unpack the (compressed) layer `diff` onto `mounts`; returns the applied
    /// (uncompressed) descriptor, whose digest is the layer's diffID.
    pub async fn apply_diff(
        &self,
        diff: super::Descriptor,
        mounts: Vec<Mount>,
    ) -> Result<super::Descriptor> {
        let mut c = api::diff_client::DiffClient::new(self.svc());
        let r = c
            .apply(api::ApplyRequest {
                diff: Some(diff),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            })
            .await
            .map_err(|s| Error::containerd("Diff.Apply", s))?
            .into_inner();
        r.applied
            .ok_or_else(|| Error::internal("Diff.Apply returned no descriptor"))
    }
}
