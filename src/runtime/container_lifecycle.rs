//! `StartContainer`, `StopContainer`, `RemoveContainer` and the handling of
//! exits and OOMs reported by containerd.

use crate::container::store::{Container, ContainerState};
use crate::containerd::TaskIo;
use crate::error::{Error, Result};
use crate::metrics::phases::{PhaseClock, Spent};
use crate::runtime::events::ContainerEventKind::{Deleted, Started, Stopped};
use crate::runtime::handlers::task_options;
use crate::runtime::Runtime;
use crate::util::time::now_nanos;
use std::sync::Arc;
use std::time::Duration;

/// Exit code and reason kubelet sees for a container whose start failed.
const START_ERROR_EXIT_CODE: i32 = 128;
/// Longest wait for `Tasks.Delete` of an exited task (the shim's own limit
/// for the log driver to finish is 12 s).
const TASK_DELETE_ON_EXIT: Duration = Duration::from_secs(15);

impl Runtime {
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        let state = c.status().state;
        if state != ContainerState::Created {
            return Err(Error::precondition(format!(
                "container {} is {state:?}, not Created",
                c.id()
            )));
        }
        let sandbox = self.sandboxes.get(&c.meta.sandbox_id)?;
        if sandbox.status().state != crate::sandbox::SandboxState::Ready {
            return Err(Error::precondition(format!(
                "pod sandbox {} is not ready",
                sandbox.id()
            )));
        }
        let mut clock = PhaseClock::start("StartContainer");
        let started = self
            .start_task_of(&c, &sandbox.meta.runtime_handler, &mut clock)
            .await;
        match started {
            Ok((pid, started_at)) => {
                let updated = c.update_status(|s| {
                    s.state = ContainerState::Running;
                    s.pid = pid;
                    s.started_at = started_at;
                });
                clock.mark("status_file", Spent::Crid);
                clock.finish(c.id());
                let early_exit = {
                    let mut gate = c.exit_gate.lock().unwrap();
                    gate.started = true;
                    gate.pending.take()
                };
                updated?;
                c.note_memory_cgroup(pid);
                tracing::info!(container = %c.id(), pid, "container started");
                self.events.publish(Started, c.id(), &c.meta.sandbox_id);
                if let Some((code, exited_at)) = early_exit {
                    self.container_exited(&c, code, exited_at).await;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.containerd.delete_task(c.id()).await;
                self.stream.release_stdin(c.id());
                let handler = self.runtime_handler(&sandbox.meta.runtime_handler);
                if handler.is_ok_and(|(_, h)| uses_fifo_stdio(&c, &h)) {
                    let dir = self.container_state_dir(c.id());
                    crate::container::fifo_stdio::OutputFifos::in_dir(&dir).release();
                }
                self.exits.forget(c.id());
                c.update_status(|s| {
                    s.state = ContainerState::Exited;
                    s.finished_at = now_nanos();
                    s.exit_code = START_ERROR_EXIT_CODE;
                    s.reason = "StartError".into();
                    s.message = e.to_string();
                })?;
                self.events.publish(Stopped, c.id(), &c.meta.sandbox_id);
                Err(e)
            }
        }
    }

    async fn start_task_of(
        &self,
        c: &Container,
        handler: &str,
        clock: &mut PhaseClock,
    ) -> Result<(u32, i64)> {
        let (_, handler) = self.runtime_handler(handler)?;
        let state_dir = self.container_state_dir(c.id());
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| Error::io(format!("create {}", state_dir.display()), e))?;
        let io = self.task_io(c, &handler, &state_dir).await?;
        clock.mark("prepare", Spent::Crid);
        let prepared = c.rootfs_mounts.lock().unwrap().take();
        let mut mounts = match prepared {
            Some(m) => m,
            None => self.containerd.snapshot_mounts(c.id()).await?,
        };
        let sandbox = self.sandboxes.get(&c.meta.sandbox_id).ok();
        let userns = sandbox
            .as_ref()
            .and_then(|s| s.meta.pod_userns().map(|(p, u)| (p.to_path_buf(), u)));
        if let Some((path, map)) = &userns {
            mounts = self
                .idmapped_rootfs_of(c.id(), (path, *map), mounts)
                .await?;
        }
        clock.mark("mounts", Spent::Containerd);
        let init_pid = self
            .containerd
            .create_task(
                c.id(),
                mounts,
                io,
                task_options(&handler, userns.as_ref().map(|u| u.1)),
            )
            .await
            .map_err(|e| e.context("create task"))?;
        clock.mark("task_create", Spent::Containerd);
        if let Some((_, userns)) = userns {
            give_stdio_pipes(init_pid, userns.root())?;
        }
        self.exits.watch(c.id());
        // Taken before the start, so a fast exit is never earlier.
        let started_at = now_nanos();
        let pid = self
            .containerd
            .start_task(c.id(), "")
            .await
            .map_err(|e| e.context("start task"))?;
        clock.mark("task_start", Spent::Containerd);
        Ok((pid, started_at))
    }

    /// Stdio of a container's task: output goes to crid-logger, a process the
    /// shim owns (crid's own shim does its job in-process), so logs keep
    /// flowing while crid is down. A container with stdin and no terminal on
    /// containerd's runc shim gets FIFOs and a logger crid starts instead
    /// (see `fifo_stdio`).
    async fn task_io(
        &self,
        c: &Container,
        handler: &crate::config::RuntimeHandler,
        state_dir: &std::path::Path,
    ) -> Result<TaskIo> {
        let log = c
            .meta
            .log_path
            .clone()
            .unwrap_or_else(|| "/dev/null".into());
        let control = state_dir.join("logger.sock");
        let (stdout, stderr) = if uses_fifo_stdio(c, handler) {
            let fifos = crate::container::fifo_stdio::start_logger(
                &self.logger_binary(),
                &log,
                &control,
                state_dir,
            )
            .await?;
            (
                fifos.stdout.to_string_lossy().into_owned(),
                fifos.stderr.to_string_lossy().into_owned(),
            )
        } else {
            let uri = cri_log::uri::LogUri {
                binary: self.logger_binary(),
                log: log.clone(),
                control: Some(control.clone()),
            }
            .to_uri();
            (uri.clone(), uri)
        };
        let mut stdin = String::new();
        if c.meta.config.stdin {
            let fifo = state_dir.join("stdin");
            if !fifo.exists() {
                nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| Error::internal(format!("mkfifo {}: {e}", fifo.display())))?;
            }
            let keep = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&fifo)
                .map_err(|e| Error::io(format!("open {}", fifo.display()), e))?;
            self.stream.hold_stdin(c.id(), keep);
            stdin = fifo.to_string_lossy().into_owned();
        }
        Ok(TaskIo {
            stdin,
            stdout,
            stderr,
            terminal: c.meta.config.tty,
        })
    }

    /// The crid-logger binary: next to crid's own executable.
    pub fn logger_binary(&self) -> std::path::PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("crid-logger")))
            .unwrap_or_else(|| "/usr/local/bin/crid-logger".into())
    }

    /// Stop with the image's stop signal (else SIGTERM), SIGKILL after `timeout` s.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let c = match self.containers.get(id) {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = c.op.lock().await;
        self.stop_locked(&c, timeout).await
    }

    async fn stop_locked(&self, c: &Arc<Container>, timeout: i64) -> Result<()> {
        if c.status().state != ContainerState::Running {
            return Ok(());
        }
        if timeout > 0 {
            let signal = c.stop_signal();
            let exited = c.exited.notified();
            tokio::pin!(exited);
            exited.as_mut().enable();
            self.kill_unless_exiting(c, signal, false).await?;
            if tokio::time::timeout(Duration::from_secs(timeout as u64), &mut exited)
                .await
                .is_ok()
                || c.status().state != ContainerState::Running
            {
                return Ok(());
            }
            tracing::info!(container = %c.id(), "stop timeout elapsed; sending SIGKILL");
        }
        let exited = c.exited.notified();
        tokio::pin!(exited);
        exited.as_mut().enable();
        if c.status().state != ContainerState::Running {
            return Ok(());
        }
        self.kill_unless_exiting(c, libc::SIGKILL as u32, true)
            .await?;
        if tokio::time::timeout(Duration::from_secs(30), &mut exited)
            .await
            .is_err()
            && c.status().state == ContainerState::Running
        {
            return Err(Error::DeadlineExceeded(format!(
                "container {} did not exit 30s after SIGKILL",
                c.id()
            )));
        }
        Ok(())
    }

    /// Signal the task. A task whose exit is being recorded is being deleted:
    /// its shim may already be gone ("ttrpc: closed"), and the caller only
    /// needs to wait for `exited`.
    async fn kill_unless_exiting(&self, c: &Container, signal: u32, all: bool) -> Result<()> {
        match self.containerd.kill_task(c.id(), "", signal, all).await {
            Err(_) if c.exit_claimed.load(std::sync::atomic::Ordering::SeqCst) => Ok(()),
            other => other,
        }
    }

    /// Force-stop if running, then delete task, container, snapshot and
    /// crid's files. The log file stays (kubelet owns it). Idempotent.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let c = match self.containers.get(id) {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = c.op.lock().await;
        self.stop_locked(&c, 0).await?;
        self.exits.forget(c.id());
        self.delete_task(c.id()).await?;
        self.containerd.remove_snapshot(c.id()).await?;
        self.containerd.delete_container(c.id()).await?;
        crate::container::idmap_mounts::remove(&crate::container::idmap_mounts::dir_of(
            &self.config.state,
            c.id(),
        ))?;
        crate::util::persist::remove_dir_all_nofollow(&self.container_state_dir(c.id()))?;
        crate::util::persist::remove_dir_all_nofollow(&self.container_dir(c.id()))?;
        self.containers.remove(c.id());
        tracing::info!(container = %c.id(), "container removed");
        self.events.publish(Deleted, c.id(), &c.meta.sandbox_id);
        Ok(())
    }

    /// Record a container's exit (idempotent). The task is deleted first, as
    /// containerd's CRI does: the shim then closes the output pipes and
    /// waits for crid-logger to drain them, so once kubelet sees `Exited`
    /// the log holds everything the container wrote.
    pub(crate) async fn container_exited(&self, c: &Arc<Container>, code: u32, exited_at: i64) {
        use std::sync::atomic::Ordering;
        {
            let mut gate = c.exit_gate.lock().unwrap();
            if !gate.started {
                gate.pending = Some((code, exited_at));
                return;
            }
        }
        if c.status().state != ContainerState::Running
            || c.exit_claimed.swap(true, Ordering::SeqCst)
        {
            return;
        }
        self.stream.release_stdin(c.id());
        if code != 0 && !c.status().oom_killed && c.oom_killed_by_counter() {
            tracing::debug!(container = %c.id(), "OOM kill found by the cgroup's counter");
            let _ = c.update_status(|s| s.oom_killed = true);
        }
        // The shim gives the logger 12 s after SIGTERM; do not wait forever
        // on a containerd that hangs.
        match tokio::time::timeout(TASK_DELETE_ON_EXIT, self.delete_task(c.id())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(container = %c.id(), error = %e, "cannot delete exited task")
            }
            Err(_) => tracing::warn!(container = %c.id(), "deleting the exited task timed out"),
        }
        self.exits.forget(c.id());
        let exit_code = code as i32;
        let finished_at = if exited_at > 0 {
            exited_at
        } else {
            now_nanos()
        }
        .max(c.status().started_at);
        // Read after the delete: the OOM event has had time to arrive.
        let reason = if c.status().oom_killed {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        // kubelet reads the termination message from the file it mounts.
        if let Err(e) = c.update_status(|s| {
            s.state = ContainerState::Exited;
            s.exit_code = exit_code;
            s.finished_at = finished_at;
            s.reason = reason.to_string();
            s.message = String::new();
        }) {
            tracing::error!(container = %c.id(), error = %e, "cannot persist exit status");
        }
        self.events.publish(Stopped, c.id(), &c.meta.sandbox_id);
        c.exited.notify_waiters();
        tracing::info!(container = %c.id(), exit_code, %reason, "container exited");
    }
}

/// True for a container whose stdio are plain FIFOs (stdin, no terminal),
/// on containerd's runc shim. crid's own shim is the log driver itself and
/// connects stdin whatever the output: its containers keep the log URI.
fn uses_fifo_stdio(c: &Container, handler: &crate::config::RuntimeHandler) -> bool {
    c.meta.config.stdin && !c.meta.config.tty && handler.runtime_type != crate::config::CRID_SHIM
}

/// Give the pipes of a created (not yet started) task's stdio to the root
/// of its pod's user namespace (host ids `uid`, `gid`), so that the
/// container can open its own stdout and stderr again (`/dev/stdout`,
/// `/proc/self/fd/1`). containerd 1.6's shim chowns the pipes it makes for
/// FIFO stdio to the mapped root, not those of a `binary://` log driver.
/// Only pipes: never /dev/null or a terminal (runc gives the console to
/// the container itself).
fn give_stdio_pipes(pid: u32, (uid, gid): (u32, u32)) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    for fd in 0..3 {
        let path = format!("/proc/{pid}/fd/{fd}");
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.file_type().is_fifo() {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|e| Error::io(format!("chown {path}"), e))?;
        }
    }
    Ok(())
}
