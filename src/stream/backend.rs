//! crid's backend of kubelet's streaming sessions
//! (`kube_remotecommand::Backend`): exec through containerd's `Tasks.Exec`
//! (`exec`), attach through the container's logger (`attach`), port-forward
//! through a connect inside the pod's network namespace (`portforward`).

use super::{attach, exec, portforward, AttachParams, ExecParams};
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use kube_remotecommand::{Backend, StdioChannels};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Write ends of stdin FIFOs crid holds, by container id (see
/// `StreamService::hold_stdin`).
pub type StdinHolds = Arc<Mutex<HashMap<String, std::fs::File>>>;

pub struct ContainerdBackend {
    pub containerd: Containerd,
    pub state_dir: PathBuf,
    pub stdin_holds: StdinHolds,
}

impl Backend for ContainerdBackend {
    type Exec = ExecParams;
    type Attach = AttachParams;
    /// The pod's network namespace; None for a host-network pod.
    type PortForward = Option<PathBuf>;
    type Connection = tokio::net::TcpStream;
    type Error = Error;

    async fn exec(&self, p: &ExecParams, tty: bool, io: StdioChannels) -> Result<i32> {
        exec::run(
            &self.containerd,
            &self.state_dir,
            &p.container_id,
            &p.cmd,
            tty,
            io,
            None,
        )
        .await
    }

    async fn attach(&self, p: &AttachParams, tty: bool, io: StdioChannels) -> Result<()> {
        let close_stdin_at_end = (p.stdin_once && !tty).then(|| self.stdin_holds.clone());
        attach::run(
            &self.containerd,
            &self.state_dir,
            &p.container_id,
            tty,
            io,
            close_stdin_at_end,
        )
        .await
    }

    async fn connect(&self, netns: &Option<PathBuf>, port: u16) -> Result<tokio::net::TcpStream> {
        portforward::connect_in_netns(netns.as_deref(), port).await
    }
}
