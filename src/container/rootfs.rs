//! Rootfs snapshots of sandboxes and containers. A prepared snapshot that no
//! container record references yet is garbage to containerd's GC: either the
//! record is created first (it names the snapshot key), or the snapshot is
//! prepared under a short lease that is dropped once the record exists. The
//! lease is needed only for the first container of an image, whose spec
//! needs /etc/passwd and /etc/group read from the prepared rootfs; later
//! containers find them in `container::user_files`.
//!
//! Pods in a user namespace of their own get their rootfs (and image
//! volumes) on a chowned copy of the image, as containerd 1.7 made them:
//! no OCI runtime on this kind of node mounts the rootfs idmapped (runc
//! 1.1 has no idmapped mounts; see README). The copy is a committed
//! snapshot keyed by the image's chain id and the mapping, shared by every
//! pod with that mapping, and referenced from the image's config blob so
//! containerd's GC collects it with the image.

use crate::containerd::Mount;
use crate::error::{Error, Result};
use crate::network::userns::PodUserns;
use crate::runtime::Runtime;
use std::path::{Path, PathBuf};

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

/// Prefix of the temporary snapshots (and their leases) a chowned copy is
/// made in.
pub(crate) const REMAP_PREFIX: &str = "crid-remap-";

/// The committed copy of image layer `chain_id` for `userns`.
pub fn remapped_name(chain_id: &str, userns: &PodUserns) -> String {
    format!("{chain_id}-userns-{}", userns.key())
}

/// Mount the prepared snapshot at `target`, give every file to the mapped
/// ids, unmount. Blocking.
fn chown_copy(mounts: &[Mount], target: &PathBuf, userns: PodUserns) -> Result<()> {
    std::fs::create_dir_all(target)
        .map_err(|e| Error::io(format!("create {}", target.display()), e))?;
    let result = mount_snapshot(mounts, target, false).and_then(|()| {
        let shifted = shift_owners(target, userns);
        unmount(target).and(shifted)
    });
    let _ = std::fs::remove_dir(target);
    result
}

/// Give each file under `root` (itself included, the same file system
/// only, symlinks not followed) the host ids its owner has inside
/// `userns`; ids the mapping lacks are left. Owners are read before any
/// is changed, so a hard link is not shifted twice. Set-id bits, which
/// chown clears, are restored.
pub fn shift_owners(root: &Path, userns: PodUserns) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let stat = |p: &Path| {
        std::fs::symlink_metadata(p).map_err(|e| Error::io(format!("stat {}", p.display()), e))
    };
    let dev = stat(root)?.dev();
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let meta = stat(&dir)?;
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Error::io(format!("read {}", dir.display()), e))?;
        files.push((dir, meta));
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read dir entry", e))?;
            let path = entry.path();
            let meta = stat(&path)?;
            if meta.dev() != dev {
                continue;
            }
            if meta.is_dir() {
                dirs.push(path);
            } else {
                files.push((path, meta));
            }
        }
    }
    for (path, meta) in files {
        let uid = userns.uids.to_host(meta.uid()).unwrap_or(meta.uid());
        let gid = userns.gids.to_host(meta.gid()).unwrap_or(meta.gid());
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(|e| Error::io(format!("chown {}", path.display()), e))?;
        let mode = meta.mode() & 0o7777;
        if !meta.file_type().is_symlink() && mode & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
        }
    }
    Ok(())
}

/// Mount a snapshot's mounts (one bind, or one overlay) read-only at
/// `target`.
pub fn mount_read_only(mounts: &[Mount], target: &Path) -> Result<()> {
    mount_snapshot(mounts, target, true)
}

/// Mount a snapshot's mounts (one bind, or one overlay) at `target`.
pub(crate) fn mount_snapshot(mounts: &[Mount], target: &Path, read_only: bool) -> Result<()> {
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
            if !read_only {
                return Ok(());
            }
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
            let flags = if read_only {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            mount(
                Some("overlay"),
                target,
                Some("overlay"),
                flags,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::userns::IdMap;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn owners_shift_once_into_the_mapped_range_and_set_id_bits_stay() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd-")).unwrap();
        std::fs::write(root.join("suid"), "").unwrap();
        std::os::unix::fs::lchown(root.join("suid"), Some(5), Some(6)).unwrap();
        std::fs::set_permissions(root.join("suid"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::os::unix::fs::symlink("etc/passwd", root.join("link")).unwrap();
        let userns = PodUserns::for_tests();
        shift_owners(&root, userns).unwrap();
        let m = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
        for p in ["", "etc", "etc/passwd", "etc/passwd-", "link"] {
            assert_eq!((m(p).uid(), m(p).gid()), (100_000, 200_000), "{p:?}");
        }
        assert_eq!((m("suid").uid(), m("suid").gid()), (100_005, 200_006));
        assert_eq!(m("suid").mode() & 0o7777, 0o4755);
    }

    #[test]
    fn copies_are_named_by_layer_and_mapping() {
        let m = IdMap {
            container_id: 0,
            host_id: 1000,
            size: 100_000,
        };
        let u = PodUserns { uids: m, gids: m };
        assert_eq!(
            remapped_name("sha256:ab", &u),
            "sha256:ab-userns-u0-1000-100000-g0-1000-100000"
        );
    }
}
