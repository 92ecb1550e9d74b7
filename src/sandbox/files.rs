//! The sandbox directory: hostname, hosts, resolv.conf and the pod's /dev/shm
//! (a tmpfs shared by all its containers).

use crate::cri::PodSandboxConfig;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Default size of the pod's /dev/shm, as Docker and containerd use.
const SHM_SIZE: u64 = 64 * 1024 * 1024;

pub struct SandboxFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv: PathBuf,
    pub shm: PathBuf,
}

pub fn sandbox_files(dir: &Path) -> SandboxFiles {
    SandboxFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv: dir.join("resolv.conf"),
        shm: dir.join("shm"),
    }
}

pub fn write_sandbox_files(dir: &Path, config: &PodSandboxConfig) -> Result<SandboxFiles> {
    let files = sandbox_files(dir);
    std::fs::create_dir_all(&files.shm)
        .map_err(|e| Error::io(format!("create {}", files.shm.display()), e))?;
    let hostname = if config.hostname.is_empty() {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default()
    } else {
        config.hostname.clone()
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let write = |p: &Path, s: String| crate::util::persist::replace_file(p, s.as_bytes());
    write(&files.hostname, format!("{hostname}\n"))?;
    write(&files.hosts, super::spec::hosts_file(&hostname, None))?;
    write(
        &files.resolv,
        super::spec::resolv_conf(config.dns_config.as_ref(), &host_resolv),
    )?;
    Ok(files)
}

/// Mount the pod's /dev/shm; `owner`: the host uid and gid of the root of
/// the pod's own user namespace, which then owns it.
pub fn mount_shm(shm: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let mut opts = format!("mode=1777,size={SHM_SIZE}");
    if let Some((uid, gid)) = owner {
        opts.push_str(&format!(",uid={uid},gid={gid}"));
    }
    mount(
        Some("shm"),
        shm,
        Some("tmpfs"),
        MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(|e| Error::internal(format!("mount tmpfs on {}: {e}", shm.display())))
}

/// Give the sandbox files (hostname, hosts, resolv.conf) to the root of
/// the pod's own user namespace (host ids `uid`, `gid`): they look owned by
/// root inside, as they do in a pod of the node's user namespace.
pub fn chown_sandbox_files(files: &SandboxFiles, (uid, gid): (u32, u32)) -> Result<()> {
    for p in [&files.hostname, &files.hosts, &files.resolv] {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))
            .map_err(|e| Error::io(format!("chown {}", p.display()), e))?;
    }
    Ok(())
}

/// Unmount the pod's /dev/shm; not mounted or missing is fine.
pub fn unmount_shm(shm: &Path) -> Result<()> {
    crate::container::rootfs::unmount(shm)
}

/// Move the pod's /dev/shm that another runtime mounted at `from` to `to`
/// (a bind mount, then `from` is unmounted): the same tmpfs, which the
/// pod's running containers keep sharing. `false` when nothing is mounted
/// at `from` (a pod on the host's IPC namespace).
pub fn take_over_shm(from: &Path, to: &Path) -> Result<bool> {
    use nix::mount::{mount, MsFlags};
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let mounted = match (dev(from), from.parent().and_then(dev)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    };
    if !mounted {
        return Ok(false);
    }
    std::fs::create_dir_all(to).map_err(|e| Error::io(format!("create {}", to.display()), e))?;
    mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| {
        Error::internal(format!("bind {} on {}: {e}", from.display(), to.display()))
    })?;
    unmount_shm(from)?;
    Ok(true)
}
