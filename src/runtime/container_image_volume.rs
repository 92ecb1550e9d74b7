//! Image volumes (KEP 4639, CRI `Mount.image`): an OCI image mounted
//! read-only into a container. As in containerd, each pod gets one
//! read-only view of an image's snapshot, mounted at
//! `<sandbox dir>/image-volumes/<image id>` the first time one of its
//! containers names the image; each such container bind-mounts that
//! directory. The views go with the pod.
//!
//! Nothing in containerd references a view, so it is labelled a GC root;
//! its key names the pod (`crid-image-volume-<pod id>-<image id>`), so
//! teardown and recovery find it by name after a restart.

use crate::container::rootfs::is_mount_point;
use crate::cri::Mount as CriMount;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::sandbox::Sandbox;
use std::path::{Path, PathBuf};

const DIR: &str = "image-volumes";
const KEY_PREFIX: &str = "crid-image-volume-";

fn snapshot_key(sandbox_id: &str, image_hex: &str) -> String {
    format!("{KEY_PREFIX}{sandbox_id}-{image_hex}")
}

/// The pod id an image volume's snapshot key names.
pub(crate) fn sandbox_of_snapshot(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    rest.split_once('-').map(|(sandbox, _)| sandbox)
}

impl Runtime {
    fn image_volumes_dir(&self, sandbox_id: &str) -> PathBuf {
        self.config.sandbox_dir(sandbox_id).join(DIR)
    }

    /// `mounts` with each image mount turned into a read-only bind of the
    /// pod's view of that image (made now if it is the pod's first).
    pub(crate) async fn with_image_volumes(
        &self,
        sandbox: &Sandbox,
        mounts: &[CriMount],
    ) -> Result<Vec<CriMount>> {
        if mounts.iter().all(|m| m.image.is_none()) {
            return Ok(mounts.to_vec());
        }
        let _one_at_a_time = sandbox.image_volumes.lock().await;
        let mut out = Vec::with_capacity(mounts.len());
        for m in mounts {
            let Some(spec) = &m.image else {
                out.push(m.clone());
                continue;
            };
            let image = self
                .images
                .resolve(&spec.image)
                .await
                .map_err(|e| e.context(&format!("image volume {}", m.container_path)))?;
            let hex = image.id.trim_start_matches("sha256:");
            let target = self.image_volumes_dir(sandbox.id()).join(hex);
            if !is_mount_point(&target)? {
                // In a pod's own user namespace: the image's copy owned by
                // the mapped ids.
                let parent = self
                    .rootfs_parent(&image.chain_id, &image.id, sandbox.meta.userns)
                    .await?;
                // On idmapped layers when the rootfs is too (else it is
                // idmapped later as a host path, or on a chowned copy).
                let idmap = match sandbox.meta.pod_userns() {
                    Some((ns, _)) if self.idmaps_rootfs().await => Some(ns),
                    _ => None,
                };
                self.mount_image_volume(sandbox.id(), &parent, hex, &target, idmap)
                    .await?;
            }
            let source = if m.image_sub_path.is_empty() {
                target
            } else {
                sub_path(&target, &m.image_sub_path).map_err(|e| {
                    e.context(&format!(
                        "image volume {} of image {}",
                        m.container_path, spec.image
                    ))
                })?
            };
            out.push(CriMount {
                host_path: source.to_string_lossy().into_owned(),
                image: None,
                image_sub_path: String::new(),
                ..m.clone()
            });
        }
        Ok(out)
    }

    async fn mount_image_volume(
        &self,
        sandbox_id: &str,
        chain_id: &str,
        image_hex: &str,
        target: &Path,
        idmap: Option<&Path>,
    ) -> Result<()> {
        let key = snapshot_key(sandbox_id, image_hex);
        // A view an interrupted attempt left goes first.
        self.containerd.remove_snapshot(&key).await?;
        let mut labels = crate::containerd::owner_labels();
        labels.insert(
            "containerd.io/gc.root".into(),
            chrono::Utc::now().to_rfc3339(),
        );
        let mounts = self
            .containerd
            .view_snapshot(&key, chain_id, labels)
            .await?;
        let mounted = std::fs::create_dir_all(target)
            .map_err(|e| Error::io(format!("create {}", target.display()), e))
            .and_then(|()| match idmap {
                Some(userns) => crate::container::idmap_mounts::mount_image_view(
                    &crate::container::idmap_mounts::dir_of(&self.config.state, sandbox_id),
                    &format!("iv-{image_hex}-"),
                    userns,
                    &mounts,
                    target,
                ),
                None => crate::container::rootfs::mount_read_only(&mounts, target),
            });
        if let Err(e) = mounted {
            let _ = std::fs::remove_dir(target);
            let _ = self.containerd.remove_snapshot(&key).await;
            return Err(e.context("mount image volume"));
        }
        tracing::info!(
            sandbox = sandbox_id,
            image = image_hex,
            "image volume mounted"
        );
        Ok(())
    }

    /// Unmount and remove every image volume of the pod; none is fine.
    pub(crate) async fn remove_image_volumes(&self, sandbox_id: &str) -> Result<()> {
        let dir = self.image_volumes_dir(sandbox_id);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
        };
        for entry in entries.flatten() {
            let target = entry.path();
            crate::container::rootfs::unmount(&target)?;
            std::fs::remove_dir(&target)
                .map_err(|e| Error::io(format!("remove {}", target.display()), e))?;
            let hex = entry.file_name().to_string_lossy().into_owned();
            self.containerd
                .remove_snapshot(&snapshot_key(sandbox_id, &hex))
                .await?;
        }
        Ok(())
    }
}

/// `sub` inside the image mounted at `root` (CRI 1.33 `image_sub_path`),
/// with symlinks resolved as if `root` were `/` (the kernel's
/// `RESOLVE_IN_ROOT`), so no link in the image leads out of it. It must
/// exist.
fn sub_path(root: &Path, sub: &str) -> Result<PathBuf> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let root = &std::fs::canonicalize(root)
        .map_err(|e| Error::io(format!("resolve {}", root.display()), e))?;
    let dir =
        std::fs::File::open(root).map_err(|e| Error::io(format!("open {}", root.display()), e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&dir, sub, how).map_err(|e| match e {
        nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => {
            Error::not_found(format!("sub path {sub:?} is not in the image"))
        }
        e => Error::internal(format!("resolve sub path {sub:?}: {e}")),
    })?;
    use std::os::fd::AsRawFd;
    let resolved = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Error::io("read the resolved sub path", e))?;
    if !resolved.starts_with(root) {
        return Err(Error::internal(format!(
            "sub path {sub:?} resolved to {} outside the image",
            resolved.display()
        )));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_pod() {
        let sid = "a".repeat(64);
        let key = snapshot_key(&sid, "beef");
        assert_eq!(sandbox_of_snapshot(&key), Some(sid.as_str()));
        assert_eq!(sandbox_of_snapshot("0123abcd"), None);
    }
}
