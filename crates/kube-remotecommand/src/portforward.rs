//! Port-forward over SPDY (`portforward.k8s.io`): the client opens a data
//! and an error stream per connection, tied by `requestid` and naming the
//! `port`; each pair becomes one connection from the backend.

use crate::spdy::{Role, Session, Stream};
use crate::Backend;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most half-open pairs (one of the two streams seen) kept per session.
const MAX_PENDING: usize = 1000;

/// Serve port-forward over SPDY: the client opens a data and an error
/// stream per connection, tied by `requestid` and naming the `port`.
pub async fn serve_spdy<B, T>(backend: Arc<B>, io: T, pod: B::PortForward)
where
    B: Backend,
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let pod = Arc::new(pod);
    let (_session, mut incoming) = Session::start(io, Role::Server);
    let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(s) = incoming.recv().await {
        let port = s.header("port").and_then(|p| p.parse::<u16>().ok());
        let key = s
            .header("requestid")
            .map(str::to_string)
            .unwrap_or_else(|| format!("port-{}", s.header("port").unwrap_or_default()));
        let kind = s.header("streamtype").unwrap_or_default().to_string();
        let Some(port) = port else {
            s.writer.reset().await;
            continue;
        };
        // Bound the half-open pairs a client can leave behind.
        if pending.len() >= MAX_PENDING && !pending.contains_key(&key) {
            s.writer.reset().await;
            continue;
        }
        let entry = pending.entry(key.clone()).or_default();
        match kind.as_str() {
            "data" => entry.0 = Some(s),
            "error" => entry.1 = Some(s),
            _ => {
                s.writer.reset().await;
                continue;
            }
        }
        if entry.0.is_some() && entry.1.is_some() {
            let (data, error) = pending.remove(&key).unwrap();
            let (backend, pod) = (backend.clone(), pod.clone());
            tokio::spawn(async move {
                forward(&*backend, &pod, port, data.unwrap(), error.unwrap()).await
            });
        }
    }
}

async fn forward<B: Backend>(
    backend: &B,
    pod: &B::PortForward,
    port: u16,
    data: Stream,
    error: Stream,
) {
    let conn = match backend.connect(pod, port).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "failed to connect to localhost:{port} in the pod's network namespace: {e}"
            );
            let _ = error.writer.write(msg.as_bytes()).await;
            let _ = error.writer.close().await;
            let _ = data.writer.close().await;
            return;
        }
    };
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut reader = data.reader;
    let up = async move {
        while let Some(b) = reader.read().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let w = data.writer.clone();
    let down = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if w.write(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = w.close().await;
    };
    // The client's half-close only ends `up`: the answer still flows. Once
    // the pod's side ends (or the client is gone), the connection is over:
    // clients such as kubectl wait for the error stream to end.
    let up = tokio::spawn(up);
    down.await;
    up.abort();
    let _ = error.writer.close().await;
}
