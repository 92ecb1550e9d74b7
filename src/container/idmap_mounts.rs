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
//! Owns only `<state>/idmap/`. It removes only what it made there, one
//! entry at a time, after unmounting it; never recursively (the entries
//! are host directories).

use crate::cri::{Mount, MountPropagation};
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The idmapped mounts of container `id`.
pub fn dir_of(state: &Path, id: &str) -> PathBuf {
    state.join("idmap").join(id)
}

/// `mounts` with each host-path volume (propagation private; not an image
/// volume) replaced by an idmapped clone of it under `dir`, mapped by the
/// user namespace pinned at `userns`. On error, what was made is undone.
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
        if m.host_path.is_empty() || m.image.is_some() || !private {
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
        crate::rootfs::unmount(&path)?;
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
