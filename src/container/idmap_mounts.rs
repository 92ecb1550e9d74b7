//! Host-path volumes of a pod in its own user namespace, idmapped by crid.
//! The OCI runtimes on this kind of node cannot idmap a mount (runc 1.1
//! has no `uidMappings` on mounts), but a bind mount of an idmapped mount
//! stays idmapped: crid clones the host path (`open_tree`), idmaps the
//! clone with the pod's pinned user namespace (`mount_setattr`), attaches
//! it under `<state>/idmap/<container id>/<n>` and gives the runtime that
//! path to bind. Files the host's root owns look owned by root inside, and
//! what the pod's root writes belongs to the host's root, as with runc 1.2
//! and containerd 2. Where the file system cannot be idmapped the volume is
//! bound as it is (its host owners show through).
//!
//! The rootfs too, where overlayfs can be mounted on idmapped layers
//! (kernel 5.19+; `rootfs_supported` probes once): crid mounts the
//! container's snapshot on idmapped clones of its layers at
//! `<state>/idmap/<id>/rootfs`, and the shim binds that. Where it cannot,
//! `rootfs` gives containers a chowned copy of the image instead.
//!
//! Owns only `<state>/idmap/`. It removes only what it made there, one
//! entry at a time, after unmounting it; never recursively (the entries
//! are host directories).

use crate::cri::{Mount, MountPropagation};
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The idmapped mounts of container (or pod sandbox) `id`.
pub fn dir_of(state: &Path, id: &str) -> PathBuf {
    state.join("idmap").join(id)
}

/// `mounts` with each host-path volume (propagation private) replaced by
/// an idmapped clone of it under `dir`, mapped by the user namespace
/// pinned at `userns`. On error, what was made is undone.
pub fn stage(dir: &Path, userns: &Path, mounts: &[Mount]) -> Result<Vec<Mount>> {
    let result = stage_all(dir, userns, mounts);
    if result.is_err() {
        let _ = remove(dir);
    }
    result
}

fn stage_all(dir: &Path, userns: &Path, mounts: &[Mount]) -> Result<Vec<Mount>> {
    let ns = std::fs::File::open(userns)
        .map_err(|e| Error::io(format!("open user namespace {}", userns.display()), e))?;
    let mut out = Vec::with_capacity(mounts.len());
    for (n, m) in mounts.iter().enumerate() {
        let private = m.propagation == MountPropagation::PropagationPrivate as i32;
        if m.host_path.is_empty() || !private {
            out.push(m.clone());
            continue;
        }
        let source = Path::new(&m.host_path);
        // Missing host paths become directories, as kubelet expects.
        if std::fs::symlink_metadata(source).is_err() {
            std::fs::create_dir_all(source).map_err(|e| {
                Error::io(
                    format!("create missing mount source {}", source.display()),
                    e,
                )
            })?;
        }
        let tree = match idmapped_clone(source, &ns) {
            Ok(fd) => fd,
            // EINVAL: the file system cannot be idmapped (devtmpfs, proc…).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::debug!(path = %source.display(), "cannot idmap; bound as it is");
                out.push(m.clone());
                continue;
            }
            Err(e) => return Err(Error::io(format!("idmap {}", source.display()), e)),
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let target = dir.join(n.to_string());
        let made = if std::fs::metadata(source)
            .map(|m| m.is_dir())
            .unwrap_or(true)
        {
            std::fs::create_dir(&target)
        } else {
            std::fs::File::create(&target).map(drop)
        };
        made.map_err(|e| Error::io(format!("create {}", target.display()), e))?;
        attach(&tree, &target).map_err(|e| Error::io(format!("attach {}", target.display()), e))?;
        out.push(Mount {
            host_path: target.to_string_lossy().into_owned(),
            ..m.clone()
        });
    }
    Ok(out)
}

/// Unmount and remove every idmapped mount under `dir`, then `dir`.
/// Missing is fine.
pub fn remove(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        crate::container::rootfs::unmount(&path)?;
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.map_err(|e| Error::io(format!("remove {}", path.display()), e))?;
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
    }
}

/// Whether an overlay can be mounted on idmapped layers here: probed
/// once, with a small overlay under `probe_dir` and a user namespace of
/// the probe's own. Blocking.
pub fn rootfs_supported(probe_dir: &Path) -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let dir = probe_dir.join(format!("idmap-probe-{}", std::process::id()));
        let supported = probe_overlay(&dir)
            .map_err(|e| tracing::warn!(error = %e, "no overlay on idmapped layers"))
            .is_ok();
        for d in ["rootfs", "lower-0"] {
            let _ = crate::container::rootfs::unmount(&dir.join(d));
        }
        for d in [
            "rootfs",
            "lower-0",
            "lower",
            "upper",
            "work/work",
            "work",
            "",
        ] {
            let _ = std::fs::remove_dir(dir.join(d));
        }
        tracing::info!(supported, "overlay rootfs on idmapped layers");
        supported
    })
}

fn probe_overlay(dir: &Path) -> Result<()> {
    let any = crate::network::userns::IdMap {
        container_id: 0,
        host_id: 65536,
        size: 65536,
    };
    let ns = crate::network::netns::new_user_namespace(crate::network::userns::PodUserns {
        uids: any,
        gids: any,
    })?;
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir_all(dir.join(d))
            .map_err(|e| Error::io(format!("create {}", dir.join(d).display()), e))?;
    }
    let mounts = [crate::containerd::Mount {
        r#type: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("lowerdir={}", dir.join("lower").display()),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
        ],
        ..Default::default()
    }];
    let target = dir.join("rootfs");
    mount_idmapped_overlay(dir, "", &ns, &mounts, (0, 0), &target, false)
}

/// Mount the snapshot `mounts` of a container (or pause container) for the
/// user namespace pinned at `userns` (root `owner` on the host), under
/// `dir`, and return the bind mount for the shim. As containerd 2's
/// overlay snapshotter does: each lower layer is an idmapped clone of the
/// layer (`lower-<i>`), the overlay (`rootfs`) is mounted on them, and the
/// upper layer's root belongs to the mapped root (what the container
/// writes is stored with its host ids, as on a chowned copy). overlayfs
/// itself cannot be idmapped. Already there: the same answer.
pub fn stage_rootfs(
    dir: &Path,
    userns: &Path,
    mounts: &[crate::containerd::Mount],
    owner: (u32, u32),
) -> Result<Vec<crate::containerd::Mount>> {
    let target = dir.join("rootfs");
    let bind = vec![crate::containerd::Mount {
        r#type: "bind".into(),
        source: target.to_string_lossy().into_owned(),
        options: vec!["rbind".into(), "rw".into()],
        ..Default::default()
    }];
    if crate::container::rootfs::is_mount_point(&target)? {
        return Ok(bind);
    }
    let ns = std::fs::File::open(userns)
        .map_err(|e| Error::io(format!("open user namespace {}", userns.display()), e))?;
    let result = mount_idmapped_overlay(dir, "", &ns, mounts, owner, &target, false);
    if let Err(e) = result {
        let _ = remove(dir);
        return Err(e);
    }
    Ok(bind)
}

/// Mount the overlay snapshot `mounts` at `target` on idmapped clones of
/// its lower layers, attached as `<dir>/<prefix>lower-<i>`; its upper
/// layer's root (if any) goes to `uid`, `gid`.
fn mount_idmapped_overlay(
    dir: &Path,
    prefix: &str,
    ns: &std::fs::File,
    mounts: &[crate::containerd::Mount],
    (uid, gid): (u32, u32),
    target: &Path,
    read_only: bool,
) -> Result<()> {
    let [m] = mounts else {
        return Err(Error::internal(format!(
            "expected one snapshot mount, got {}",
            mounts.len()
        )));
    };
    if m.r#type != "overlay" {
        return Err(Error::internal(format!(
            "cannot idmap a rootfs snapshot of type {:?}",
            m.r#type
        )));
    }
    let mut options = Vec::with_capacity(m.options.len());
    for o in &m.options {
        if let Some(lowers) = o.strip_prefix("lowerdir=") {
            let mut mapped = Vec::new();
            for (i, lower) in lowers.split(':').enumerate() {
                let target = dir.join(format!("{prefix}lower-{i}"));
                std::fs::create_dir_all(&target)
                    .map_err(|e| Error::io(format!("create {}", target.display()), e))?;
                let tree = idmapped_clone(Path::new(lower), ns)
                    .map_err(|e| Error::io(format!("idmap layer {lower}"), e))?;
                attach(&tree, &target)
                    .map_err(|e| Error::io(format!("attach {}", target.display()), e))?;
                mapped.push(target.to_string_lossy().into_owned());
            }
            options.push(format!("lowerdir={}", mapped.join(":")));
        } else {
            if let Some(upper) = o.strip_prefix("upperdir=") {
                std::os::unix::fs::lchown(upper, Some(uid), Some(gid))
                    .map_err(|e| Error::io(format!("chown {upper}"), e))?;
            }
            options.push(o.clone());
        }
    }
    std::fs::create_dir_all(target)
        .map_err(|e| Error::io(format!("create {}", target.display()), e))?;
    let overlay = [crate::containerd::Mount {
        options,
        ..m.clone()
    }];
    crate::container::rootfs::mount_snapshot(&overlay, target, read_only)
}

/// Mount the read-only view `mounts` of an image volume at `target` for a
/// pod whose user namespace is pinned at `userns`: an overlay view (a
/// multi-layer image) on idmapped clones of its layers, attached under
/// `dir` as `<prefix>lower-<i>`; a bind view (one layer) as it is, idmapped
/// later with the container's other host paths (`stage`).
pub fn mount_image_view(
    dir: &Path,
    prefix: &str,
    userns: &Path,
    mounts: &[crate::containerd::Mount],
    target: &Path,
) -> Result<()> {
    if !matches!(mounts, [m] if m.r#type == "overlay") {
        return crate::container::rootfs::mount_read_only(mounts, target);
    }
    let ns = std::fs::File::open(userns)
        .map_err(|e| Error::io(format!("open user namespace {}", userns.display()), e))?;
    mount_idmapped_overlay(dir, prefix, &ns, mounts, (0, 0), target, true)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached recursive clone of the mount tree at `source`, idmapped
/// with the user namespace `ns`.
fn idmapped_clone(source: &Path, ns: &std::fs::File) -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(source.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: plain system calls on a NUL-terminated path and a struct we
    // own; the returned fd is owned from here on.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let tree = OwnedFd::from_raw_fd(fd as i32);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: ns.as_raw_fd() as u64,
        };
        let empty = c"";
        let rc = libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        );
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(tree)
    }
}

/// Attach the detached mount `tree` at `target`.
fn attach(tree: &OwnedFd, target: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(target.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let empty = c"";
    // SAFETY: plain system call on a fd we own and NUL-terminated paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
