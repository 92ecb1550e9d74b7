//! TaskOOM: the kernel's OOM kills in a container's memory cgroup, published
//! as containerd's runc shim does.
//!
//! cgroup v1 (also the hybrid layout): an eventfd registered on the memory
//! cgroup's `memory.oom_control` (via `cgroup.event_control`); it also fires
//! when the cgroup is removed, which ends the watch. cgroup v2: inotify on
//! `memory.events`, an event when its `oom_kill` count grows. One small
//! thread per container, blocked in the kernel.

use crate::task::Tasks;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;

/// The memory cgroup directory of `pid` and whether it is cgroup v2.
fn memory_cgroup(pid: u32) -> io::Result<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            let dir = PathBuf::from("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            return Ok((dir, false));
        }
        if controllers.is_empty() {
            unified = Some(path.trim_start_matches('/').to_string());
        }
    }
    let path = unified.ok_or_else(|| io::Error::other("no memory cgroup"))?;
    let dir = PathBuf::from("/sys/fs/cgroup").join(path);
    if dir.join("memory.events").exists() {
        return Ok((dir, true));
    }
    Err(io::Error::other("no memory cgroup"))
}

/// Watch the memory cgroup of `pid`, the init process of container `id`.
pub fn watch(tasks: Tasks, id: &str, pid: u32) -> io::Result<()> {
    let (dir, v2) = memory_cgroup(pid)?;
    let rt = tokio::runtime::Handle::current();
    let id = id.to_string();
    let on_oom = move || {
        let tasks = tasks.clone();
        let id = id.clone();
        rt.spawn(async move { tasks.publish_oom(&id).await });
    };
    if v2 {
        watch_v2(dir, on_oom)
    } else {
        watch_v1(dir, on_oom)
    }
}

fn watch_v1(dir: PathBuf, on_oom: impl Fn() + Send + 'static) -> io::Result<()> {
    let control = File::open(dir.join("memory.oom_control"))?;
    // SAFETY: eventfd with valid flags; the fd is owned by the File below.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `efd` was just created and is owned by nothing else.
    let mut events = unsafe { File::from_raw_fd(efd) };
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", events.as_raw_fd(), control.as_raw_fd()),
    )?;
    std::thread::spawn(move || {
        let _control = control;
        let mut buf = [0u8; 8];
        while events.read_exact(&mut buf).is_ok() {
            // Also signalled when the cgroup goes away: then stop.
            if !dir.join("memory.oom_control").exists() {
                return;
            }
            on_oom();
        }
    });
    Ok(())
}

fn oom_kills(dir: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.events")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

fn watch_v2(dir: PathBuf, on_oom: impl Fn() + Send + 'static) -> io::Result<()> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(io::Error::from)?;
    inotify
        .add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
        .map_err(io::Error::from)?;
    let mut seen = oom_kills(&dir).unwrap_or(0);
    std::thread::spawn(move || {
        while inotify.read_events().is_ok() {
            let Some(now) = oom_kills(&dir) else {
                return; // the cgroup is gone
            };
            if now > seen {
                seen = now;
                on_oom();
            }
        }
    });
    Ok(())
}
