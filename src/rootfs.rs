//! Rootfs snapshots of sandboxes and containers. A prepared snapshot that no
//! container record references yet is garbage to containerd's GC: either the
//! record is created first (it names the snapshot key), or the snapshot is
//! prepared under a short lease that is dropped once the record exists. The
//! lease is needed only for the first container of an image, whose spec
//! needs /etc/passwd and /etc/group read from the prepared rootfs; later
//! containers find them in `container::user_files`.

use crate::containerd::Mount;
use crate::error::{Error, Result};
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
            .prepare_snapshot(id, parent, crate::sandbox::run::owner_labels())
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
            .prepare_snapshot(id, parent, crate::sandbox::run::owner_labels())
            .await
    }

    /// Drop the creation lease: the container record holds the snapshot now
    /// (or, after a failure, the snapshot was removed).
    pub(crate) async fn release_rootfs_lease(&self, id: &str) {
        if let Err(e) = self.containerd.delete_lease(&lease_id(id)).await {
            tracing::warn!(id, error = %e, "cannot delete creation lease");
        }
    }
}

/// Mount a snapshot's mounts (one bind, or one overlay) read-only at
/// `target`.
pub fn mount_read_only(mounts: &[Mount], target: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let [m] = mounts else {
        return Err(Error::internal(format!(
            "expected one snapshot mount, got {}",
            mounts.len()
        )));
    };
    let failed = |e: nix::errno::Errno| {
        Error::internal(format!(
            "mount {} {} at {}: {e}",
            m.r#type,
            m.source,
            target.display()
        ))
    };
    match m.r#type.as_str() {
        "bind" => {
            let mut flags = MsFlags::MS_BIND;
            if m.options.iter().any(|o| o == "rbind") {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(m.source.as_str()),
                target,
                None::<&str>,
                flags,
                None::<&str>,
            )
            .map_err(failed)?;
            let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            if let Err(e) = mount(None::<&str>, target, None::<&str>, ro, None::<&str>) {
                let _ = unmount(target);
                return Err(failed(e));
            }
            Ok(())
        }
        "overlay" => {
            let data: Vec<&str> = m
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| !matches!(*o, "ro" | "rw"))
                .collect();
            mount(
                Some("overlay"),
                target,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(data.join(",").as_str()),
            )
            .map_err(failed)
        }
        other => Err(Error::internal(format!(
            "cannot mount a snapshot of type {other:?}"
        ))),
    }
}

/// Unmount `target` (lazily); not mounted or missing is fine.
pub fn unmount(target: &Path) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::internal(format!(
            "unmount {}: {e}",
            target.display()
        ))),
    }
}
