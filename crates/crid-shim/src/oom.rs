//! TaskOOM: the kernel's OOM kills in a container's memory cgroup, published
//! as containerd's runc shim does.
//!
//! cgroup v1 (also the hybrid layout): an eventfd registered on the memory
//! cgroup's `memory.oom_control` (via `cgroup.event_control`); it also fires
//! when the cgroup is removed, which ends the watch. cgroup v2: inotify on
//! `memory.events`, an event when its `oom_kill` count grows. Either way a
//! non-blocking fd polled by a task of the shim's runtime (no thread).

use crate::output::register;
use crate::task::Tasks;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

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

/// Watch the memory cgroup of `pid`, the init process of container `id`,
/// in a task of the shim's runtime.
pub fn watch(tasks: Tasks, id: &str, pid: u32) -> io::Result<()> {
    let (dir, v2) = memory_cgroup(pid)?;
    let id = id.to_string();
    if v2 {
        let events = watch_v2(&dir)?;
        tokio::spawn(async move {
            let mut seen = oom_kills(&dir).unwrap_or(0);
            while wait_readable(&events).await {
                let _ = events.get_ref().0.read_events();
                let Some(now) = oom_kills(&dir) else {
                    return; // the cgroup is gone
                };
                if now > seen {
                    seen = now;
                    tasks.publish_oom(&id).await;
                }
            }
        });
    } else {
        let (control, events) = watch_v1(&dir)?;
        tokio::spawn(async move {
            let _control = control;
            while wait_readable(&events).await {
                let mut count = [0u8; 8];
                let _ = (&*events.get_ref()).read(&mut count);
                // Also signalled when the cgroup goes away: then stop.
                if !dir.join("memory.oom_control").exists() {
                    return;
                }
                tasks.publish_oom(&id).await;
            }
        });
    }
    Ok(())
}

/// Wait until `fd` has something to read; false if it cannot be polled.
/// The caller then reads it (non-blocking) before waiting again.
async fn wait_readable<T: AsRawFd>(fd: &AsyncFd<T>) -> bool {
    match fd.readable().await {
        Ok(mut ready) => {
            ready.clear_ready();
            true
        }
        Err(_) => false,
    }
}

/// Register an eventfd (non-blocking) on the cgroup's `memory.oom_control`;
/// the control file must stay open as long as the watch.
fn watch_v1(dir: &Path) -> io::Result<(File, AsyncFd<File>)> {
    let control = File::open(dir.join("memory.oom_control"))?;
    // SAFETY: eventfd with valid flags; the fd is owned by the File below.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `efd` was just created and is owned by nothing else.
    let events = unsafe { File::from_raw_fd(efd) };
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", events.as_raw_fd(), control.as_raw_fd()),
    )?;
    Ok((control, register(events)?))
}

fn oom_kills(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.events")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// An inotify instance, pollable by the runtime.
struct PolledInotify(Inotify);

impl AsRawFd for PolledInotify {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Non-blocking inotify on the cgroup's `memory.events`.
fn watch_v2(dir: &Path) -> io::Result<AsyncFd<PolledInotify>> {
    let flags = InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK;
    let inotify = Inotify::init(flags).map_err(io::Error::from)?;
    inotify
        .add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
        .map_err(io::Error::from)?;
    register(PolledInotify(inotify))
}
