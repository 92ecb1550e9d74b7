//! Port-forward: TCP connections to `127.0.0.1:<port>` inside a pod's network
//! namespace. The connect happens on a dedicated OS thread that enters the
//! namespace (`setns`) and then exits; the socket keeps its namespace.

use crate::error::{Error, Result};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Connect to `127.0.0.1:port` inside the network namespace at `netns`, or
/// in crid's own (the node's) for a host-network pod (`None`).
pub async fn connect_in_netns(netns: Option<&Path>, port: u16) -> Result<tokio::net::TcpStream> {
    let Some(netns) = netns else {
        return tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io(format!("connect to 127.0.0.1:{port} on the node"), e));
    };
    let netns: PathBuf = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("crid-netns-connect".into())
        .spawn(move || {
            let r = (|| -> std::io::Result<std::net::TcpStream> {
                let f = std::fs::File::open(&netns)?;
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                s.set_nonblocking(true)?;
                Ok(s)
            })();
            let _ = tx.send(r);
        })
        .map_err(|e| Error::io("spawn netns thread", e))?;
    let s = rx
        .await
        .map_err(|_| Error::internal("netns connect thread died"))?
        .map_err(|e| Error::io(format!("connect to 127.0.0.1:{port} in pod network"), e))?;
    tokio::net::TcpStream::from_std(s).map_err(|e| Error::io("register socket", e))
}

/// Serve port-forward over SPDY: the client opens a data and an error
/// stream per connection, tied by `requestid` and naming the `port`.
pub async fn serve_spdy<T>(io: T, netns: Option<PathBuf>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use super::spdy::{Role, Session, Stream};
    use std::collections::HashMap;
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
        if pending.len() >= 1000 && !pending.contains_key(&key) {
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
            tokio::spawn(forward(netns.clone(), port, data.unwrap(), error.unwrap()));
        }
    }
}

async fn forward(
    netns: Option<PathBuf>,
    port: u16,
    data: super::spdy::Stream,
    error: super::spdy::Stream,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = match connect_in_netns(netns.as_deref(), port).await {
        Ok(t) => t,
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
    let (mut rd, mut wr) = tcp.into_split();
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
