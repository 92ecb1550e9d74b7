//! Mounting a snapshot's rootfs on the host, and the chowned copies of
//! image layers that pods in a user namespace of their own run on (as
//! containerd 1.7 made them: no OCI runtime on this kind of node mounts the
//! rootfs idmapped; runc 1.1 has no idmapped mounts, see README). Pure
//! mount and file-ownership helpers: preparing the snapshots themselves
//! (leases, the shared copies) is `runtime::rootfs`.

use crate::containerd::Mount;
use crate::error::{Error, Result};
use crate::network::userns::PodUserns;
use std::path::{Path, PathBuf};

/// Prefix of the temporary snapshots (and their leases) a chowned copy is
/// made in.
pub(crate) const REMAP_PREFIX: &str = "crid-remap-";

/// The committed copy of image layer `chain_id` for `userns`.
pub fn remapped_name(chain_id: &str, userns: &PodUserns) -> String {
    format!("{chain_id}-userns-{}", userns.key())
}

/// Mount the prepared snapshot at `target`, give every file to the mapped
/// ids, unmount. Blocking.
pub(crate) fn chown_copy(mounts: &[Mount], target: &PathBuf, userns: PodUserns) -> Result<()> {
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

/// `path` is where something is mounted (per /proc/self/mountinfo).
pub(crate) fn is_mount_point(path: &Path) -> Result<bool> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let mounted = mount_points(&info).any(|p| p == path);
    Ok(mounted)
}

/// The mount points of a mountinfo text (field 5, octal escapes undone).
fn mount_points(info: &str) -> impl Iterator<Item = PathBuf> + '_ {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn mountinfo_mount_points_with_escapes() {
        let info = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    90 22 0:50 / /var/lib/crid/a\\040b rw - tmpfs tmpfs rw\n";
        let points: Vec<PathBuf> = mount_points(info).collect();
        assert_eq!(
            points,
            [PathBuf::from("/"), PathBuf::from("/var/lib/crid/a b")]
        );
    }
}
