//! The `GET /metrics` endpoint: HTTP/1.1 served by hyper, one request per
//! connection, bounded request size and time. Gauges come from the caller's
//! `gauges` function at scrape time (crid reads them from the runtime's
//! stores), so this module knows nothing of the runtime.

use crate::error::{Error, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// What the scrape reads the gauges from.
type GaugeFn = dyn Fn() -> super::Gauges + Send + Sync;
type Gauges = Arc<GaugeFn>;

/// The largest request head read (hyper's smallest allowed buffer).
const MAX_REQUEST: usize = 8192;

/// Bind `address` (empty = metrics off) and serve in the background.
/// Returns the bound address (useful with port 0).
pub async fn start(
    address: &str,
    gauges: impl Fn() -> super::Gauges + Send + Sync + 'static,
) -> Result<Option<std::net::SocketAddr>> {
    let gauges: Gauges = Arc::new(gauges);
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
                    let gauges = gauges.clone();
                    tokio::spawn(async move {
                        let served =
                            tokio::time::timeout(Duration::from_secs(10), serve_one(conn, gauges));
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

/// One request, then the connection closes.
async fn serve_one(conn: tokio::net::TcpStream, gauges: Gauges) -> hyper::Result<()> {
    let service = service_fn(move |req| {
        let gauges = gauges.clone();
        async move { Ok::<_, Infallible>(respond(&req, &*gauges)) }
    });
    http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST)
        .serve_connection(TokioIo::new(conn), service)
        .await
}

fn respond(req: &Request<Incoming>, gauges: &GaugeFn) -> Response<Full<Bytes>> {
    let (status, body) = if req.method() == Method::GET && req.uri().path() == "/metrics" {
        (StatusCode::OK, super::global().render(&gauges()))
    } else {
        (StatusCode::NOT_FOUND, "not found\n".to_string())
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
    resp
}
