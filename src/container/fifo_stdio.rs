//! Stdio of a container whose stdin is open and that has no terminal
//! (`kubectl run -i`, `kubectl attach -i`).
//!
//! containerd 1.6's runc shim connects no stdin to a process whose output
//! goes to a `binary://` log driver, so such a container would read EOF at
//! once. It gets three FIFOs in its state directory instead, which the shim
//! copies to and from, and crid starts the container's crid-logger itself,
//! reading the two output FIFOs: in a session of its own, so that it keeps
//! logging across a crid restart as the shim-started loggers do.

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the logger may take to open its log and control socket.
const LOGGER_READY: Duration = Duration::from_secs(10);

/// The output FIFOs of a container (its stdin FIFO is made elsewhere).
pub(crate) struct OutputFifos {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl OutputFifos {
    pub(crate) fn in_dir(state_dir: &Path) -> Self {
        OutputFifos {
            stdout: state_dir.join("stdout"),
            stderr: state_dir.join("stderr"),
        }
    }

    /// Let a logger still waiting for the shim's end of a FIFO go: open and
    /// close a writer, so it reads EOF and exits. For a task that was never
    /// created; harmless when the shim has its ends open or nobody reads.
    pub(crate) fn release(&self) {
        for fifo in [&self.stdout, &self.stderr] {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
        }
    }
}

/// Make the output FIFOs and start `logger` on them, writing `log` and
/// serving `control`; returns once the logger is ready.
pub(crate) async fn start_logger(
    logger: &Path,
    log: &Path,
    control: &Path,
    state_dir: &Path,
) -> Result<OutputFifos> {
    let fifos = OutputFifos::in_dir(state_dir);
    for fifo in [&fifos.stdout, &fifos.stderr] {
        if !fifo.exists() {
            nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| Error::internal(format!("mkfifo {}: {e}", fifo.display())))?;
        }
    }
    spawn_logger(
        logger,
        log,
        control,
        (&fifos.stdout, Some(&fifos.stderr)),
        std::process::Stdio::inherit(),
    )
    .await?;
    Ok(fifos)
}

/// Start `logger` on existing output FIFOs (`stderr` is `None` for a
/// terminal), writing `log` and serving `control`, in a session of its own;
/// returns once the logger is ready. `errors` gets the logger's own
/// messages.
pub(crate) async fn spawn_logger(
    logger: &Path,
    log: &Path,
    control: &Path,
    (stdout, stderr): (&Path, Option<&Path>),
    errors: std::process::Stdio,
) -> Result<()> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::internal(format!("pipe: {e}")))?;
    let mut cmd = tokio::process::Command::new(logger);
    cmd.arg("log")
        .arg(log)
        .arg("control")
        .arg(control)
        .arg("stdout")
        .arg(stdout)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(errors);
    if let Some(stderr) = stderr {
        cmd.arg("stderr").arg(stderr);
    }
    let ready_fd = ready_w.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls: setsid and
    // dup2 (which clears close-on-exec on fd 5, the logger's ready pipe).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(ready_fd, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("start {}", logger.display()), e))?;
    drop(ready_w);
    let ready = tokio::task::spawn_blocking(move || wait_for_eof(ready_r, LOGGER_READY))
        .await
        .map_err(|e| Error::internal(format!("logger ready wait: {e}")))?;
    if let Err(e) = ready {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(Error::internal(format!(
            "{} did not get ready: {e}",
            logger.display()
        )));
    }
    // Reaped here while crid lives; after a crid restart, by init.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

/// Block until every writer of `fd` closed it, at most `limit`.
fn wait_for_eof(fd: OwnedFd, limit: Duration) -> std::result::Result<(), String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 16];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("not ready within {limit:?}"));
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as u32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => match nix::unistd::read(&fd, &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.to_string()),
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}
