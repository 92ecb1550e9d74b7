//! Attach to a container's main process: output from its logger's control
//! socket (`crate::container::store::state_dir(..)/logger.sock`: write `attach\n`, read
//! `ok\n`, then frames of 1-byte stream id (1 stdout, 2 stderr), 4-byte
//! big-endian length, payload), input into its stdin FIFO when it has one,
//! terminal resize through `ResizePty` of the task.

use super::exec::ensure_running;
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use bytes::Bytes;
use kube_remotecommand::StdioChannels;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

/// Largest output frame accepted from the logger.
const MAX_FRAME: usize = 1 << 20;

/// Stream the container's output until it ends (or the client goes away).
pub async fn run(
    cd: &Containerd,
    state_dir: &Path,
    container_id: &str,
    tty: bool,
    io: StdioChannels,
    close_stdin_at_end: Option<super::backend::StdinHolds>,
) -> Result<()> {
    ensure_running(cd, container_id).await?;
    let dir = crate::container::store::state_dir(state_dir, container_id);
    let sock_path = dir.join("logger.sock");
    let sock = tokio::net::UnixStream::connect(&sock_path)
        .await
        .map_err(|e| Error::io(format!("connect {}", sock_path.display()), e))?;
    let mut sock = BufReader::new(sock);
    sock.get_mut()
        .write_all(b"attach\n")
        .await
        .map_err(|e| Error::io("logger attach", e))?;
    let mut ok = [0u8; 3];
    sock.read_exact(&mut ok)
        .await
        .map_err(|e| Error::io("logger attach reply", e))?;
    if &ok != b"ok\n" {
        return Err(Error::internal(format!(
            "logger of {container_id} refused attach: {:?}",
            String::from_utf8_lossy(&ok)
        )));
    }

    let mut side = Vec::new();
    if let Some(mut rx) = io.stdin {
        let fifo = dir.join("stdin");
        if fifo.exists() {
            let mut w = pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(&fifo)
                .map_err(|e| Error::io(format!("open {}", fifo.display()), e))?;
            let (cd, id) = (cd.clone(), container_id.to_string());
            side.push(tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if w.write_all(&b).await.is_err() {
                        break;
                    }
                }
                // stdin_once: this client's stdin ended, so does the
                // container's. Every writer of the FIFO goes (ours, crid's
                // hold, the shim's own through CloseIO) and the shim's copy
                // reads EOF.
                if let Some(holds) = close_stdin_at_end {
                    drop(w);
                    holds.lock().unwrap().remove(&id);
                    if let Err(e) = cd.close_stdin(&id, "").await {
                        tracing::warn!(container = %id, error = %e, "cannot close stdin");
                    }
                }
            }));
        }
    }
    if let Some(mut rx) = io.resize {
        let (cd, id) = (cd.clone(), container_id.to_string());
        side.push(tokio::spawn(async move {
            while let Some((w, h)) = rx.recv().await {
                let _ = cd.resize_pty(&id, "", w, h).await;
            }
        }));
    }

    let (stdout, stderr) = (io.stdout, io.stderr);
    loop {
        let mut head = [0u8; 5];
        if sock.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            break;
        }
        let mut payload = vec![0u8; len];
        if sock.read_exact(&mut payload).await.is_err() {
            break;
        }
        let sink = match (head[0], tty) {
            (1, _) | (2, true) => stdout.as_ref(),
            (2, false) => stderr.as_ref(),
            _ => None,
        };
        if let Some(s) = sink {
            if s.send(Bytes::from(payload)).await.is_err() {
                break;
            }
        }
    }
    for h in side {
        h.abort();
    }
    Ok(())
}
