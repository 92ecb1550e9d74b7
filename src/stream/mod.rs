//! Exec, attach and port-forward for kubelet, plus `ExecSync`. Knows
//! nothing of gRPC. The streaming protocols and the server of the streaming
//! URLs are the kube-remotecommand crate; here are the URLs' issuing (with
//! the checks a CRI request gets) and crid's backend of the sessions
//! (`backend`): exec through containerd, attach through the container's
//! logger, port-forward inside the pod's network namespace.
//!
//! Conventions shared with the container lifecycle:
//! - a container's stdin FIFO (only when its config has `stdin`) is
//!   `container::store::state_dir(state, id)/stdin`;
//! - its logger's control socket is `container::store::state_dir(state, id)/logger.sock`
//!   (protocol in `crates/cri-log/src/driver.rs`).

mod attach;
mod backend;
mod exec;
mod portforward;

pub use kube_remotecommand::{MAX_TOKENS, TOKEN_TTL};
pub use portforward::connect_in_netns;

use crate::config::Config;
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use backend::ContainerdBackend;
use kube_remotecommand::{Request, StdioChannels, StreamServer, Streams};
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
    server: Arc<StreamServer<ContainerdBackend>>,
    netns_lookup: NetnsLookup,
}

/// Output of `exec_sync` is capped per stream, as containerd does.
pub const EXEC_SYNC_OUTPUT_CAP: usize = 16 * 1024 * 1024;

impl StreamService {
    pub fn new(containerd: Containerd, config: &Config, netns_lookup: NetnsLookup) -> Self {
        let backend = ContainerdBackend {
            containerd,
            state_dir: config.state.clone(),
            stdin_holds: Default::default(),
        };
        StreamService {
            server: StreamServer::new(Arc::new(backend)),
            netns_lookup,
        }
    }

    fn backend(&self) -> &ContainerdBackend {
        self.server.backend()
    }

    /// Keep a write end of a container's stdin FIFO open, so that its stdin
    /// stays open between attaches until `release_stdin`.
    pub fn hold_stdin(&self, container_id: &str, writer: std::fs::File) {
        self.backend()
            .stdin_holds
            .lock()
            .unwrap()
            .insert(container_id.to_string(), writer);
    }

    /// Drop the write end `hold_stdin` kept (the container exited).
    pub fn release_stdin(&self, container_id: &str) {
        self.backend()
            .stdin_holds
            .lock()
            .unwrap()
            .remove(container_id);
    }

    /// Start the HTTP streaming server (called once at start-up).
    pub async fn start(&self, address: &str) -> Result<()> {
        self.server.listen(address).await.map_err(server_error)?;
        Ok(())
    }

    /// The address the streaming server listens on, once started.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.local_addr()
    }

    /// URL for kubelet to connect to for this exec.
    pub async fn exec_url(&self, p: ExecParams) -> Result<String> {
        if p.cmd.is_empty() {
            return Err(Error::invalid("exec: cmd is empty"));
        }
        let streams = streams("exec", p.stdin, p.stdout, p.stderr, p.tty)?;
        exec::ensure_running(&self.backend().containerd, &p.container_id).await?;
        self.server
            .url_for(Request::Exec(streams, p))
            .map_err(server_error)
    }

    pub async fn attach_url(&self, p: AttachParams) -> Result<String> {
        let streams = streams("attach", p.stdin, p.stdout, p.stderr, p.tty)?;
        exec::ensure_running(&self.backend().containerd, &p.container_id).await?;
        self.server
            .url_for(Request::Attach(streams, p))
            .map_err(server_error)
    }

    pub async fn port_forward_url(&self, sandbox_id: &str, _ports: Vec<i32>) -> Result<String> {
        let netns = (self.netns_lookup)(sandbox_id).ok_or_else(|| {
            Error::not_found(format!("network namespace of sandbox {sandbox_id}"))
        })?;
        self.server
            .url_for(Request::PortForward(netns))
            .map_err(server_error)
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
        let io = StdioChannels {
            stdout: Some(out_tx),
            stderr: Some(err_tx),
            ..Default::default()
        };
        let code = exec::run(
            &self.backend().containerd,
            &self.backend().state_dir,
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

/// The streams of an exec or attach (`what`): at least one of stdin,
/// stdout and stderr.
fn streams(what: &str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<Streams> {
    if !(stdin || stdout || stderr) {
        return Err(Error::invalid(format!(
            "{what}: one of stdin, stdout, stderr must be set"
        )));
    }
    Ok(Streams {
        stdin,
        stdout,
        stderr,
        tty,
    })
}

/// The streaming server's own failures, as crid's errors. (A function, not a
/// `From`: a second `From` for `Error` leaves `?` in some async blocks
/// without a type.)
fn server_error(e: kube_remotecommand::Error) -> Error {
    use kube_remotecommand::Error as E;
    match e {
        E::Bind { address, source } => {
            Error::io(format!("bind streaming server on {address}"), source)
        }
        E::NotStarted | E::TooManyRequests { .. } => Error::Unavailable(e.to_string()),
    }
}
