//! Streaming server for exec, attach and port-forward (SPDY/3.1 and
//! WebSocket), plus `ExecSync`. Knows nothing of gRPC.
//!
//! Conventions shared with the container lifecycle:
//! - a container's stdin FIFO (only when its config has `stdin`) is
//!   `container::store::state_dir(state, id)/stdin`;
//! - its logger's control socket is `container::store::state_dir(state, id)/logger.sock`
//!   (protocol in `src/bin/crid-logger.rs`).

mod attach;
mod exec;
mod portforward;
pub mod protocol;
mod remotecommand;
mod server;
pub mod spdy;
mod websocket;

pub use portforward::connect_in_netns;
pub use server::{MAX_TOKENS, TOKEN_TTL};

use crate::config::Config;
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Finds the network namespace file of a sandbox (for port-forward).
/// A sandbox's network namespace for port-forward: None when there is no
/// such sandbox, Some(None) when it uses the node's network.
pub type NetnsLookup = Arc<dyn Fn(&str) -> Option<Option<PathBuf>> + Send + Sync>;

/// What an exec asks for (CRI `ExecRequest`).
#[derive(Debug, Clone, Default)]
pub struct ExecParams {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// What an attach asks for (CRI `AttachRequest`).
#[derive(Debug, Clone, Default)]
pub struct AttachParams {
    pub container_id: String,
    /// The container's `stdin_once`: its stdin closes when this client's
    /// stdin ends (without a terminal), as kubelet expects of `attach -i`.
    pub stdin_once: bool,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ExecSyncOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

pub struct StreamService {
    inner: Arc<server::Inner>,
    netns_lookup: NetnsLookup,
}

/// Output of `exec_sync` is capped per stream, as containerd does.
pub const EXEC_SYNC_OUTPUT_CAP: usize = 16 * 1024 * 1024;

impl StreamService {
    pub fn new(containerd: Containerd, config: &Config, netns_lookup: NetnsLookup) -> Self {
        StreamService {
            inner: Arc::new(server::Inner {
                containerd,
                state_dir: config.state.clone(),
                tokens: Default::default(),
                addr: Default::default(),
                stdin_holds: Default::default(),
            }),
            netns_lookup,
        }
    }

    /// Keep a write end of a container's stdin FIFO open, so that its stdin
    /// stays open between attaches until `release_stdin`.
    pub fn hold_stdin(&self, container_id: &str, writer: std::fs::File) {
        self.inner
            .stdin_holds
            .lock()
            .unwrap()
            .insert(container_id.to_string(), writer);
    }

    /// Drop the write end `hold_stdin` kept (the container exited).
    pub fn release_stdin(&self, container_id: &str) {
        self.inner.stdin_holds.lock().unwrap().remove(container_id);
    }

    /// Start the HTTP streaming server (called once at start-up).
    pub async fn start(&self, address: &str) -> Result<()> {
        server::listen(self.inner.clone(), address).await?;
        Ok(())
    }

    /// The address the streaming server listens on, once started.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.addr.get().copied()
    }

    /// URL for kubelet to connect to for this exec.
    pub async fn exec_url(&self, p: ExecParams) -> Result<String> {
        if p.cmd.is_empty() {
            return Err(Error::invalid("exec: cmd is empty"));
        }
        if !(p.stdin || p.stdout || p.stderr) {
            return Err(Error::invalid(
                "exec: one of stdin, stdout, stderr must be set",
            ));
        }
        exec::ensure_running(&self.inner.containerd, &p.container_id).await?;
        self.inner.url_for(server::Target::Exec(p))
    }

    pub async fn attach_url(&self, p: AttachParams) -> Result<String> {
        if !(p.stdin || p.stdout || p.stderr) {
            return Err(Error::invalid(
                "attach: one of stdin, stdout, stderr must be set",
            ));
        }
        exec::ensure_running(&self.inner.containerd, &p.container_id).await?;
        self.inner.url_for(server::Target::Attach(p))
    }

    pub async fn port_forward_url(&self, sandbox_id: &str, _ports: Vec<i32>) -> Result<String> {
        let netns = (self.netns_lookup)(sandbox_id).ok_or_else(|| {
            Error::not_found(format!("network namespace of sandbox {sandbox_id}"))
        })?;
        self.inner.url_for(server::Target::PortForward { netns })
    }

    /// Run `cmd` in the container, wait at most `timeout` (None = no limit).
    pub async fn exec_sync(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        timeout: Option<std::time::Duration>,
    ) -> Result<ExecSyncOutput> {
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(16);
        let (err_tx, err_rx) = tokio::sync::mpsc::channel(16);
        let collect = |mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>| {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(b) = rx.recv().await {
                    let room = EXEC_SYNC_OUTPUT_CAP - buf.len();
                    buf.extend_from_slice(&b[..b.len().min(room)]);
                }
                buf
            })
        };
        let (out, err) = (collect(out_rx), collect(err_rx));
        let io = protocol::StdioChannels {
            stdout: Some(out_tx),
            stderr: Some(err_tx),
            ..Default::default()
        };
        let code = exec::run(
            &self.inner.containerd,
            &self.inner.state_dir,
            container_id,
            &cmd,
            false,
            io,
            timeout,
        )
        .await?;
        Ok(ExecSyncOutput {
            stdout: out.await.unwrap_or_default(),
            stderr: err.await.unwrap_or_default(),
            exit_code: code,
        })
    }
}
