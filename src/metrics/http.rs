//! A tiny HTTP/1.0-style server for `GET /metrics`: one request per
//! connection, bounded request size and time. Gauges are read from the
//! runtime's stores at scrape time.

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_REQUEST: usize = 8192;

/// Bind `address` (empty = metrics off) and serve in the background.
/// Returns the bound address (useful with port 0).
pub async fn start(address: &str, rt: Arc<Runtime>) -> Result<Option<std::net::SocketAddr>> {
    if address.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::io(format!("metrics: listen on {address}"), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("metrics: local address", e))?;
    tracing::info!(address = %bound, "serving Prometheus metrics on /metrics");
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    let rt = rt.clone();
                    tokio::spawn(async move {
                        let served =
                            tokio::time::timeout(Duration::from_secs(10), serve_one(conn, &rt));
                        if let Ok(Err(e)) = served.await {
                            tracing::debug!(error = %e, "metrics connection");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Some(bound))
}

async fn serve_one(mut conn: tokio::net::TcpStream, rt: &Runtime) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = if method == "GET" && path == "/metrics" {
        ("200 OK", super::global().render(&gauges(rt)))
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

fn gauges(rt: &Runtime) -> super::Gauges {
    use std::collections::BTreeMap;
    let mut pods: BTreeMap<String, u64> = BTreeMap::new();
    for s in rt.sandboxes.list() {
        *pods
            .entry(format!("{:?}", s.status().state).to_lowercase())
            .or_default() += 1;
    }
    let mut containers: BTreeMap<String, u64> = BTreeMap::new();
    for c in rt.containers.list() {
        *containers
            .entry(format!("{:?}", c.status().state).to_lowercase())
            .or_default() += 1;
    }
    super::Gauges {
        pods: pods.into_iter().collect(),
        containers: containers.into_iter().collect(),
        event_subscribers: rt.events.subscribers() as u64,
    }
}
