//! Running a command in a container through containerd: `Tasks.Exec` and
//! `Start` with FIFOs under `<state>/exec/<exec id>/`, stdio pumped to and
//! from channels, resize, stdin close, bounded output drain after exit, and
//! cleanup (DeleteProcess, FIFOs) on every path.

use crate::containerd::{Container, Containerd, ExitStatus, ProcessStatus, TaskIo};
use crate::error::{Error, Result};
use bytes::Bytes;
use kube_remotecommand::StdioChannels;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

/// How long output may keep flowing after the process exited (a background
/// child holding the pipe must not hang the exec; kubernetes#92057).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Fail unless the container has a running task.
pub async fn ensure_running(cd: &Containerd, container_id: &str) -> Result<()> {
    running_container(cd, container_id).await.map(|_| ())
}

/// The container's record (its spec), failing unless the container has a
/// running task. Both lookups go out at once.
async fn running_container(cd: &Containerd, container_id: &str) -> Result<Container> {
    let (container, task) = tokio::join!(cd.get_container(container_id), cd.get_task(container_id));
    let container = container.map_err(|e| {
        if e.is_not_found() {
            Error::not_found(format!("container {container_id}"))
        } else {
            e
        }
    })?;
    match task? {
        Some(p) if p.status == ProcessStatus::Running as i32 => Ok(container),
        _ => Err(Error::precondition(format!(
            "container {container_id} is not running"
        ))),
    }
}

/// How long an exec with a terminal waits for the client's first terminal
/// size (clients send it as soon as the streams are up), so that the process
/// starts with that size rather than 0x0: a command that reads its size once
/// (`stty size`, `tput cols`) runs before a later resize would reach it.
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(100);

/// The exec's OCI process: the container's own, with `cmd`, `tty` and the
/// terminal's first size (width, height).
fn process_json(
    c: Container,
    cmd: &[String],
    tty: bool,
    console_size: Option<(u32, u32)>,
) -> Result<Vec<u8>> {
    let container_id = &c.id;
    let spec = c
        .spec
        .ok_or_else(|| Error::internal(format!("container {container_id} has no spec")))?;
    let spec: serde_json::Value = serde_json::from_slice(&spec.value)
        .map_err(|e| Error::internal(format!("container {container_id} spec: {e}")))?;
    let mut process = spec
        .get("process")
        .cloned()
        .ok_or_else(|| Error::internal(format!("container {container_id} spec has no process")))?;
    process["args"] = serde_json::json!(cmd);
    process["terminal"] = serde_json::json!(tty);
    match console_size {
        Some((width, height)) if tty => {
            process["consoleSize"] = serde_json::json!({"height": height, "width": width});
        }
        _ => {
            if let Some(p) = process.as_object_mut() {
                p.remove("consoleSize");
            }
        }
    }
    Ok(serde_json::to_vec(&process).expect("json"))
}

/// The spawned `Tasks.Wait` of an exec, aborted when dropped: an exec that
/// fails, times out or is abandoned (a cancelled RPC) stops waiting too.
struct Waiter(JoinHandle<Result<ExitStatus>>);

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::thread_rng().gen();
    hex::encode(bytes)
}

fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(format!("mkfifo {}", path.display()), e.into()))
}

/// Copy a FIFO to a channel; once the channel is gone, keep draining.
fn pump_out(
    mut rx: pipe::Receiver,
    sink: Option<tokio::sync::mpsc::Sender<Bytes>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut sink = sink;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Some(s) = &sink {
                        if s.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            sink = None;
                        }
                    }
                }
            }
        }
    })
}

/// Run `cmd` in the container; returns the exit code. With `timeout`, the
/// process is killed when it expires and `DeadlineExceeded` returned.
pub async fn run(
    cd: &Containerd,
    state_dir: &Path,
    container_id: &str,
    cmd: &[String],
    tty: bool,
    mut io: StdioChannels,
    timeout: Option<Duration>,
) -> Result<i32> {
    if cmd.is_empty() {
        return Err(Error::invalid("exec: empty command"));
    }
    let container = running_container(cd, container_id).await?;
    let console_size = match (tty, io.resize.as_mut()) {
        (true, Some(rx)) => tokio::time::timeout(FIRST_SIZE_WAIT, rx.recv())
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let process = process_json(container, cmd, tty, console_size)?;
    let exec_id = random_id();
    let dir = state_dir.join("exec").join(&exec_id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
    let result = run_in(cd, &dir, container_id, &exec_id, process, tty, io, timeout).await;
    let _ = cd.delete_process(container_id, &exec_id).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_in(
    cd: &Containerd,
    dir: &Path,
    container_id: &str,
    exec_id: &str,
    process: Vec<u8>,
    tty: bool,
    io: StdioChannels,
    timeout: Option<Duration>,
) -> Result<i32> {
    let path = |n: &str| -> PathBuf { dir.join(n) };
    let fifo_err = |p: &Path, e: std::io::Error| Error::io(format!("open {}", p.display()), e);
    mkfifo(&path("stdout"))?;
    let stdout = pipe::OpenOptions::new()
        .open_receiver(path("stdout"))
        .map_err(|e| fifo_err(&path("stdout"), e))?;
    let stderr = if tty {
        None
    } else {
        mkfifo(&path("stderr"))?;
        Some(
            pipe::OpenOptions::new()
                .open_receiver(path("stderr"))
                .map_err(|e| fifo_err(&path("stderr"), e))?,
        )
    };
    let stdin = if io.stdin.is_some() {
        mkfifo(&path("stdin"))?;
        // Read-write so opening never fails for want of a reader.
        Some(
            pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(path("stdin"))
                .map_err(|e| fifo_err(&path("stdin"), e))?,
        )
    } else {
        None
    };
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    let task_io = TaskIo {
        stdin: if stdin.is_some() {
            s(path("stdin"))
        } else {
            String::new()
        },
        stdout: s(path("stdout")),
        stderr: if tty {
            String::new()
        } else {
            s(path("stderr"))
        },
        terminal: tty,
    };
    cd.exec_process(container_id, exec_id, process, task_io)
        .await?;
    // Waiting from before the start, as containerd's own clients do: the
    // exit comes back as it happens, not one round trip after the start.
    let mut waiter = Waiter({
        let (cd, id, eid) = (cd.clone(), container_id.to_string(), exec_id.to_string());
        tokio::spawn(async move { cd.wait_task(&id, &eid).await })
    });
    cd.start_task(container_id, exec_id).await?;

    let mut outputs = vec![pump_out(stdout, io.stdout)];
    if let Some(e) = stderr {
        outputs.push(pump_out(e, io.stderr));
    }
    let mut side = Vec::new();
    if let (Some(mut fifo), Some(mut rx)) = (stdin, io.stdin) {
        let (cd, id, eid) = (cd.clone(), container_id.to_string(), exec_id.to_string());
        side.push(tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if fifo.write_all(&b).await.is_err() {
                    break;
                }
            }
            drop(fifo);
            let _ = cd.close_stdin(&id, &eid).await;
        }));
    }
    if let Some(mut rx) = io.resize {
        let (cd, id, eid) = (cd.clone(), container_id.to_string(), exec_id.to_string());
        side.push(tokio::spawn(async move {
            while let Some((w, h)) = rx.recv().await {
                let _ = cd.resize_pty(&id, &eid, w, h).await;
            }
        }));
    }

    let joined = |r: std::result::Result<Result<_>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(Error::internal(format!("waiting for the exec: {e}"))))
    };
    let status = match timeout {
        None => joined((&mut waiter.0).await),
        Some(t) => match tokio::time::timeout(t, &mut waiter.0).await {
            Ok(r) => joined(r),
            Err(_) => {
                let _ = cd
                    .kill_task(container_id, exec_id, libc::SIGKILL as u32, false)
                    .await;
                let _ = cd.wait_task(container_id, exec_id).await;
                for h in outputs.iter().chain(side.iter()) {
                    h.abort();
                }
                return Err(Error::DeadlineExceeded(format!(
                    "exec in container {container_id} timed out after {t:?}; the process was killed"
                )));
            }
        },
    };
    let drained = tokio::time::timeout(
        DRAIN_AFTER_EXIT,
        futures::future::join_all(outputs.iter_mut()),
    )
    .await;
    if drained.is_err() {
        tracing::debug!(
            container_id,
            exec_id,
            "output still open after exit; stopped draining"
        );
    }
    for h in outputs.iter().chain(side.iter()) {
        h.abort();
    }
    Ok(status?.code as i32)
}
