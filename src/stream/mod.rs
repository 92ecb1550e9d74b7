//! Streaming server for exec, attach and port-forward (SPDY/3.1 and
//! WebSocket), plus `ExecSync`. Knows nothing of gRPC.
//!
//! Conventions shared with the container lifecycle:
//! - a container's stdin FIFO (only when its config has `stdin`) is
//!   `<state>/containers/<id>/stdin`;
//! - its logger's control socket is `<state>/containers/<id>/logger.sock`
//!   (protocol in `src/bin/crid-logger.rs`).

pub mod spdy;

use crate::config::Config;
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Finds the network namespace file of a sandbox (for port-forward).
pub type NetnsLookup = Arc<dyn Fn(&str) -> Option<PathBuf> + Send + Sync>;

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
    #[allow(dead_code)]
    containerd: Containerd,
    #[allow(dead_code)]
    state_dir: PathBuf,
    #[allow(dead_code)]
    netns_lookup: NetnsLookup,
}

impl StreamService {
    pub fn new(containerd: Containerd, config: &Config, netns_lookup: NetnsLookup) -> Self {
        StreamService {
            containerd,
            state_dir: config.state.clone(),
            netns_lookup,
        }
    }

    /// Start the HTTP streaming server (called once at start-up).
    pub async fn start(&self, _address: &str) -> Result<()> {
        Ok(())
    }

    /// URL for kubelet to connect to for this exec.
    pub async fn exec_url(&self, _p: ExecParams) -> Result<String> {
        Err(Error::Unimplemented("Exec".into()))
    }

    pub async fn attach_url(&self, _p: AttachParams) -> Result<String> {
        Err(Error::Unimplemented("Attach".into()))
    }

    pub async fn port_forward_url(&self, _sandbox_id: &str, _ports: Vec<i32>) -> Result<String> {
        Err(Error::Unimplemented("PortForward".into()))
    }

    /// Run `cmd` in the container, wait at most `timeout` (None = no limit).
    pub async fn exec_sync(
        &self,
        _container_id: &str,
        _cmd: Vec<String>,
        _timeout: Option<std::time::Duration>,
    ) -> Result<ExecSyncOutput> {
        Err(Error::Unimplemented("ExecSync".into()))
    }
}
