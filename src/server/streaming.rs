//! CRI `Exec`, `Attach`, `PortForward`, `ExecSync`: translation to `stream::`.

use crate::cri::*;
use crate::error::Result;
use crate::runtime::Runtime;
use crate::stream::{AttachParams, ExecParams};

pub(super) async fn exec(rt: &Runtime, r: ExecRequest) -> Result<ExecResponse> {
    let url = rt
        .stream
        .exec_url(ExecParams {
            container_id: r.container_id,
            cmd: r.cmd,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        })
        .await?;
    Ok(ExecResponse { url })
}

pub(super) async fn attach(rt: &Runtime, r: AttachRequest) -> Result<AttachResponse> {
    let container = rt.containers.get(&r.container_id)?;
    let url = rt
        .stream
        .attach_url(AttachParams {
            container_id: container.id().to_string(),
            stdin_once: container.meta.config.stdin_once,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        })
        .await?;
    Ok(AttachResponse { url })
}

pub(super) async fn port_forward(
    rt: &Runtime,
    r: PortForwardRequest,
) -> Result<PortForwardResponse> {
    let url = rt
        .stream
        .port_forward_url(&r.pod_sandbox_id, r.port)
        .await?;
    Ok(PortForwardResponse { url })
}

pub(super) async fn exec_sync(rt: &Runtime, r: ExecSyncRequest) -> Result<ExecSyncResponse> {
    let timeout = (r.timeout > 0).then(|| std::time::Duration::from_secs(r.timeout as u64));
    let out = rt.stream.exec_sync(&r.container_id, r.cmd, timeout).await?;
    Ok(ExecSyncResponse {
        stdout: out.stdout,
        stderr: out.stderr,
        exit_code: out.exit_code,
    })
}
