//! Network namespaces that outlive processes: a file under crid's state dir,
//! bind-mounted from a namespace created on a dedicated OS thread. Also the
//! helpers that run code inside such a namespace (always on a fresh OS thread
//! that exits afterwards, never on a pooled tokio thread).
//! Owns only the pin files it is given; never follows symlinks when removing.

use crate::error::{Error, Result};
use crate::network::userns::PodUserns;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `connect_tcp_in` waits for a loopback connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on stacked mounts `remove` peels off one path.
const MAX_UMOUNTS: usize = 16;

/// A pinned network namespace.
#[derive(Debug, Clone)]
pub struct NetNs {
    path: PathBuf,
}

/// The IPC and UTS namespaces pinned next to a pod's network namespace when
/// the pod runs without a pause container to hold them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtraPins<'a> {
    pub ipc: Option<&'a Path>,
    /// Pin path, and the hostname to set (empty: keep the node's).
    pub uts: Option<(&'a Path, &'a str)>,
    /// A new user namespace with this mapping, pinned at this path: it
    /// owns the other namespaces made with it (so the pod's root may set
    /// its sysctls and hostname).
    pub user: Option<(&'a Path, PodUserns)>,
}

impl ExtraPins<'_> {
    fn paths(&self) -> Vec<&Path> {
        self.ipc
            .into_iter()
            .chain(self.uts.map(|u| u.0))
            .chain(self.user.map(|u| u.0))
            .collect()
    }
}

impl NetNs {
    /// Create a new network namespace pinned at `dir/name`, with `lo` up.
    pub fn create(dir: &Path, name: &str) -> Result<NetNs> {
        Self::create_with(dir, name, ExtraPins::default())
    }

    /// Like `create`, and pin a new IPC and/or UTS namespace as well (all
    /// made by one `unshare`). On failure nothing is left pinned.
    pub fn create_with(dir: &Path, name: &str, extra: ExtraPins) -> Result<NetNs> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(Error::invalid(format!("invalid netns name {name:?}")));
        }
        let path = dir.join(name);
        let mut made: Vec<PathBuf> = Vec::new();
        let result = (|| {
            for p in std::iter::once(path.as_path()).chain(extra.paths()) {
                create_pin_file(p)?;
                made.push(p.to_path_buf());
            }
            let (net, extra_owned) = (path.clone(), OwnedPins::from(extra));
            if let Some((user, map)) = extra.user {
                pin_in_new_user_namespace(user, map, &net, &extra_owned)?;
                return run_in(&net, loopback_up)?;
            }
            std::thread::Builder::new()
                .name("crid-netns-new".into())
                .spawn(move || pin_new_namespaces(&net, &extra_owned))
                .map_err(|e| Error::io("spawn netns thread", e))
                .and_then(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::internal("netns thread panicked")))
                })
        })();
        if let Err(e) = result {
            // Rollback: any of the mounts may or may not exist.
            for p in &made {
                let _ = Self::remove(p);
            }
            return Err(e.context(&format!("create netns {}", path.display())));
        }
        Ok(NetNs { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unpin and delete `path` (a network namespace or any other pinned
    /// namespace); a missing file is fine, so is one that is not mounted.
    /// Refuses anything that is not a regular file in a directory.
    pub fn remove(path: &Path) -> Result<()> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("stat netns {}", path.display()), e)),
        };
        if !meta.file_type().is_file() {
            return Err(Error::invalid(format!(
                "refusing to remove netns {}: not a regular file",
                path.display()
            )));
        }
        let parent_is_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .and_then(|p| std::fs::symlink_metadata(p).ok())
            .is_some_and(|m| m.file_type().is_dir());
        if !parent_is_dir || path.file_name().is_none() {
            return Err(Error::invalid(format!(
                "refusing to remove netns {}: not a file directly in a directory",
                path.display()
            )));
        }
        for _ in 0..MAX_UMOUNTS {
            match umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
                Ok(()) => continue,
                // EINVAL: not a mount point (any more).
                Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
                Err(e) => {
                    return Err(Error::io(
                        format!("unmount netns {}", path.display()),
                        e.into(),
                    ))
                }
            }
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove netns {}", path.display()), e)),
        }
    }
}

/// Whether `path` is a pinned namespace (a mount of the nsfs).
pub fn is_pinned(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, NSFS_MAGIC};
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// An empty file to bind-mount a namespace on; its directory is created.
fn create_pin_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| Error::io(format!("create namespace dir {}", dir.display()), e))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map(drop)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => {
                Error::AlreadyExists(format!("namespace pin {}", path.display()))
            }
            _ => Error::io(format!("create namespace pin {}", path.display()), e),
        })
}

/// `ExtraPins` with owned paths, to move into the pinning thread.
struct OwnedPins {
    ipc: Option<PathBuf>,
    uts: Option<(PathBuf, String)>,
}

impl From<ExtraPins<'_>> for OwnedPins {
    fn from(p: ExtraPins<'_>) -> Self {
        OwnedPins {
            ipc: p.ipc.map(Path::to_path_buf),
            uts: p.uts.map(|(p, h)| (p.to_path_buf(), h.to_string())),
        }
    }
}

impl OwnedPins {
    /// The namespaces to unshare: the network one, and those pinned here.
    fn clone_flags(&self) -> CloneFlags {
        let mut flags = CloneFlags::CLONE_NEWNET;
        if self.ipc.is_some() {
            flags |= CloneFlags::CLONE_NEWIPC;
        }
        if self.uts.is_some() {
            flags |= CloneFlags::CLONE_NEWUTS;
        }
        flags
    }

    /// Bind-mounts the namespaces under `ns_dir` (a `/proc/…/ns`) onto
    /// their pins: `user` (if given) first, then `net`, IPC and UTS.
    fn bind_from(&self, ns_dir: &str, user: Option<&Path>, net: &Path) -> Result<()> {
        let pins = [
            user.map(|p| ("user", p)),
            Some(("net", net)),
            self.ipc.as_deref().map(|p| ("ipc", p)),
            self.uts.as_ref().map(|(p, _)| ("uts", p.as_path())),
        ];
        for (kind, target) in pins.into_iter().flatten() {
            let source = format!("{ns_dir}/{kind}");
            mount(
                Some(source.as_str()),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| Error::io(format!("bind-mount {source}"), e.into()))?;
        }
        Ok(())
    }
}

/// Runs on a thread of its own that exits right after: the thread's
/// namespaces are replaced, which must never leak into other work.
fn pin_new_namespaces(net: &Path, extra: &OwnedPins) -> Result<()> {
    let flags = extra.clone_flags();
    unshare(flags).map_err(|e| Error::io(format!("unshare({flags:?})"), e.into()))?;
    if let Some((_, hostname)) = extra.uts.as_ref().filter(|(_, h)| !h.is_empty()) {
        nix::unistd::sethostname(hostname)
            .map_err(|e| Error::io(format!("sethostname({hostname:?})"), e.into()))?;
    }
    let tid = nix::unistd::gettid();
    extra.bind_from(&format!("/proc/self/task/{tid}/ns"), None, net)?;
    loopback_up()
}

/// A process cannot enter a new user namespace while it has other threads,
/// so a forked child makes all the namespaces with one `unshare` (the user
/// namespace first, which then owns the others) and sets the hostname;
/// crid writes its id maps and bind-mounts its namespaces, then lets it
/// exit.
fn pin_in_new_user_namespace(
    user: &Path,
    map: PodUserns,
    net: &Path,
    extra: &OwnedPins,
) -> Result<()> {
    let flags = (CloneFlags::CLONE_NEWUSER | extra.clone_flags()).bits();
    let hostname = extra.uts.as_ref().map_or("", |(_, h)| h.as_str());
    in_unshared_child(flags, hostname, |child| {
        write_id_maps(child, map)?;
        extra.bind_from(&format!("/proc/{child}/ns"), Some(user), net)
    })
}

/// A new user namespace with mapping `map`, held by the returned file
/// only (nothing is pinned): for probes.
pub fn new_user_namespace(map: PodUserns) -> Result<File> {
    in_unshared_child(libc::CLONE_NEWUSER, "", |child| {
        write_id_maps(child, map)?;
        let path = format!("/proc/{child}/ns/user");
        File::open(&path).map_err(|e| Error::io(format!("open {path}"), e))
    })
}

/// Forks a child that unshares `flags` (and sets `hostname` if not empty),
/// runs `work` with the child's pid while the child waits, then lets the
/// child exit and reaps it. Between fork and exit the child makes only
/// plain system calls on memory prepared before the fork: no allocation,
/// no lock.
fn in_unshared_child<T>(
    flags: libc::c_int,
    hostname: &str,
    work: impl FnOnce(nix::unistd::Pid) -> Result<T>,
) -> Result<T> {
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, pipe2, ForkResult};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let hostname = hostname.as_bytes();
    let pipe = || pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe", e.into()));
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    // SAFETY: the child only calls async-signal-safe functions (unshare,
    // sethostname, read, write, _exit) on memory prepared before the fork.
    let child = match unsafe { fork() }.map_err(|e| Error::io("fork", e.into()))? {
        ForkResult::Child => unsafe {
            let failed = libc::unshare(flags) != 0
                || (!hostname.is_empty()
                    && libc::sethostname(hostname.as_ptr().cast(), hostname.len()) != 0);
            let err: i32 = if failed { *libc::__errno_location() } else { 0 };
            let bytes = err.to_ne_bytes();
            libc::write(ready_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            let mut b = 0u8;
            libc::read(go_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0)
        },
        ForkResult::Parent { child } => child,
    };
    drop((ready_w, go_r));
    let result = (|| {
        let mut bytes = [0u8; 4];
        File::from(ready_r)
            .read_exact(&mut bytes)
            .map_err(|e| Error::io("namespace helper", e))?;
        let errno = i32::from_ne_bytes(bytes);
        if errno != 0 {
            return Err(Error::io(
                "unshare namespaces (and sethostname) in the helper",
                std::io::Error::from_raw_os_error(errno),
            ));
        }
        work(child)
    })();
    let _ = File::from(go_w).write_all(&[1]);
    let _ = waitpid(child, None);
    result
}

/// Writes the uid and gid maps of `child`'s new user namespace.
fn write_id_maps(child: nix::unistd::Pid, map: PodUserns) -> Result<()> {
    use std::io::Write;
    for (file, m) in [("uid_map", map.uids), ("gid_map", map.gids)] {
        let path = format!("/proc/{child}/{file}");
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(m.proc_map_line().as_bytes()))
            .map_err(|e| Error::io(format!("write {path}"), e))?;
    }
    Ok(())
}

/// Bring `lo` up in the calling thread's network namespace.
fn loopback_up() -> Result<()> {
    const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
    const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
    const IFF_UP: libc::c_short = 0x1;
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq we own; the fd is
    // closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(Error::io("socket for lo", std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, SIOCGIFFLAGS as _, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= IFF_UP;
            rc = libc::ioctl(fd, SIOCSIFFLAGS as _, &mut req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(Error::io("set lo up", err));
        }
    }
    Ok(())
}

fn enter(netns: &Path) -> Result<()> {
    let file =
        File::open(netns).map_err(|e| Error::io(format!("open netns {}", netns.display()), e))?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::io(format!("setns {}", netns.display()), e.into()))
}

/// Run `f` inside the network namespace pinned at `netns`, on a dedicated OS
/// thread that exits afterwards. Sockets created by `f` stay in that namespace.
pub fn run_in<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("crid-netns-run".into())
            .spawn_scoped(s, move || -> Result<T> {
                enter(netns)?;
                Ok(f())
            })
            .map_err(|e| Error::io("spawn netns thread", e))?;
        handle
            .join()
            .unwrap_or_else(|_| Err(Error::internal("netns thread panicked")))
    })
}

/// Connect to `port` on the loopback of the namespace at `netns` (127.0.0.1,
/// then [::1]). The stream keeps its namespace after the thread exits.
pub fn connect_tcp_in(netns: &Path, port: u16) -> Result<TcpStream> {
    run_in(netns, || {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT).or_else(|e4| {
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|_| e4)
        })
    })?
    .map_err(|e| {
        Error::io(
            format!("connect to port {port} in netns {}", netns.display()),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_of_missing_file_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        NetNs::remove(&dir.path().join("nope")).unwrap();
    }

    #[test]
    fn remove_unlinks_an_unmounted_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plain");
        std::fs::write(&p, b"").unwrap();
        NetNs::remove(&p).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn remove_refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            NetNs::remove(&link),
            Err(Error::InvalidArgument(_))
        ));
        assert!(target.exists() && link.symlink_metadata().is_ok());
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(
            NetNs::remove(&sub),
            Err(Error::InvalidArgument(_))
        ));
        assert!(sub.exists());
    }

    #[test]
    fn create_rejects_names_with_slashes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            NetNs::create(dir.path(), "../x"),
            Err(Error::InvalidArgument(_))
        ));
    }
}
