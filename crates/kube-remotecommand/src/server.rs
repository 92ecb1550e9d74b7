//! The streaming HTTP server: URL routing (`/exec/<token>`,
//! `/attach/<token>`, `/portforward/<token>`), the HTTP/1.1 upgrade to
//! SPDY/3.1 or WebSocket with protocol negotiation (HTTP itself is hyper's),
//! and the dispatch of the upgraded connection to the sessions.

use crate::tokens::TokenCache;
use crate::{protocol, websocket};
use crate::{Backend, Error, Request};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{HeaderMap, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Largest request head read (hyper's buffer; its smallest is 8 KiB).
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Issues streaming URLs and serves them with a [`Backend`].
pub struct StreamServer<B: Backend> {
    backend: Arc<B>,
    tokens: Mutex<TokenCache<Request<B>>>,
    addr: OnceLock<SocketAddr>,
}

impl<B: Backend> StreamServer<B> {
    pub fn new(backend: Arc<B>) -> Arc<Self> {
        Arc::new(StreamServer {
            backend,
            tokens: Mutex::new(TokenCache::default()),
            addr: OnceLock::new(),
        })
    }

    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The address the server listens on, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    /// A single-use URL for `request`.
    pub fn url_for(&self, request: Request<B>) -> Result<String, Error> {
        let addr = self.local_addr().ok_or(Error::NotStarted)?;
        let route = request.route();
        let token = self
            .tokens
            .lock()
            .unwrap()
            .insert_at(request, Instant::now())?;
        Ok(format!("http://{addr}/{route}/{token}"))
    }

    /// Bind `address` and serve in the background; returns the bound address.
    pub async fn listen(self: &Arc<Self>, address: &str) -> Result<SocketAddr, Error> {
        let bind_err = |source| Error::Bind {
            address: address.to_string(),
            source,
        };
        let l = tokio::net::TcpListener::bind(address)
            .await
            .map_err(bind_err)?;
        let addr = l.local_addr().map_err(bind_err)?;
        let _ = self.addr.set(addr);
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((tcp, _)) => {
                        let _ = tcp.set_nodelay(true);
                        tokio::spawn(server.clone().serve_conn(tcp));
                    }
                    Err(e) => {
                        tracing::warn!("streaming server accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(addr)
    }
}

impl<B: Backend> StreamServer<B> {
    /// Serve one connection: its requests are answered until one is
    /// upgraded, and the connection then belongs to that session.
    async fn serve_conn(self: Arc<Self>, tcp: tokio::net::TcpStream) {
        let service = hyper::service::service_fn(move |req| {
            let answer = self.answer(req);
            async move { Ok::<_, std::convert::Infallible>(answer) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .title_case_headers(true)
            .max_buf_size(MAX_REQUEST_HEAD)
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!("streaming connection: {e}");
        }
    }

    /// The answer to `req`. A 101 also starts the session, in a task that
    /// takes the connection over once hyper has sent the answer.
    fn answer(&self, mut req: hyper::Request<Incoming>) -> Response<String> {
        let mut parts = req.uri().path().trim_start_matches('/').splitn(2, '/');
        let (route, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let request = self.tokens.lock().unwrap().take_at(token, Instant::now());
        let request = match request {
            Some(r) if r.route() == route => r,
            _ => return refuse(StatusCode::NOT_FOUND, "unknown or expired token\n"),
        };
        let backend = self.backend.clone();
        let headers = req.headers();
        let upgrade = header(headers, UPGRADE.as_str()).to_ascii_lowercase();
        if upgrade == "websocket" {
            let offered = all(headers, "sec-websocket-protocol");
            let Some(proto) = websocket::negotiate(&request, &offered) else {
                return refuse(StatusCode::FORBIDDEN, "");
            };
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                header(headers, "sec-websocket-key").as_bytes(),
            );
            let query = req.uri().query().unwrap_or_default().to_string();
            let upgraded = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                match upgraded.await {
                    Ok(io) => {
                        websocket::serve(backend, TokioIo::new(io), &query, proto, request).await
                    }
                    Err(e) => tracing::debug!("streaming upgrade: {e}"),
                }
            });
            return switching(
                "websocket",
                [
                    ("Sec-WebSocket-Accept", accept),
                    ("Sec-WebSocket-Protocol", proto.to_string()),
                ],
            );
        }
        if upgrade != "spdy/3.1" {
            return refuse(
                StatusCode::BAD_REQUEST,
                "expected an upgrade to SPDY/3.1 or websocket\n",
            );
        }
        let (ours, fallback): (&[&str], &str) = match request {
            Request::PortForward(_) => (&[protocol::PORT_FORWARD], protocol::PORT_FORWARD),
            _ => (protocol::SPDY_REMOTECOMMAND, "channel.k8s.io"),
        };
        let offered = all(headers, "x-stream-protocol-version");
        let Some(proto) = protocol::negotiate(&offered, ours, fallback) else {
            let body = format!("no supported protocol; supported: {}\n", ours.join(", "));
            return refuse(StatusCode::FORBIDDEN, &body);
        };
        let upgraded = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let io = match upgraded.await {
                Ok(io) => TokioIo::new(io),
                Err(e) => return tracing::debug!("streaming upgrade: {e}"),
            };
            match request {
                Request::PortForward(pod) => crate::portforward::serve_spdy(backend, io, pod).await,
                r => crate::remotecommand::serve(backend, io, proto, r).await,
            }
        });
        switching(
            "SPDY/3.1",
            [("X-Stream-Protocol-Version", proto.to_string())],
        )
    }
}

/// A header's value ("" when absent or not text).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Every value of a header, in order.
fn all(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// 101 Switching Protocols to `protocol`, with `extra` headers.
fn switching<const N: usize>(
    protocol: &str,
    extra: [(&'static str, String); N],
) -> Response<String> {
    let mut resp = Response::new(String::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    for (name, value) in [("Upgrade", protocol.to_string())].into_iter().chain(extra) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    resp
}

/// An error answer in plain text; the connection closes after it.
fn refuse(status: StatusCode, body: &str) -> Response<String> {
    let mut resp = Response::new(body.to_string());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    if !body.is_empty() {
        h.insert("content-type", HeaderValue::from_static("text/plain"));
    }
    resp
}
