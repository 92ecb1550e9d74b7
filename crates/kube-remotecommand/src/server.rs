//! The streaming HTTP server: URL routing (`/exec/<token>`,
//! `/attach/<token>`, `/portforward/<token>`), the HTTP/1.1 upgrade to
//! SPDY/3.1 or WebSocket with protocol negotiation, and the dispatch to the
//! sessions.

use crate::protocol;
use crate::tokens::TokenCache;
use crate::{Backend, Error, Request};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const MAX_REQUEST_HEAD: u64 = 16 * 1024;

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

struct RequestHead {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

async fn read_head(io: &mut BufReader<tokio::net::TcpStream>) -> Option<RequestHead> {
    let mut head = Vec::new();
    let mut limited = (&mut *io).take(MAX_REQUEST_HEAD);
    loop {
        let n = limited.read_until(b'\n', &mut head).await.ok()?;
        if n == 0 {
            return None;
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
    }
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut hs);
    req.parse(&head).ok()?;
    let target = req.path?.to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(RequestHead {
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    })
}

async fn respond(io: &mut BufReader<tokio::net::TcpStream>, status: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = io.get_mut().write_all(msg.as_bytes()).await;
    let _ = io.get_mut().shutdown().await;
}

impl<B: Backend> StreamServer<B> {
    async fn serve_conn(self: Arc<Self>, tcp: tokio::net::TcpStream) {
        let mut io = BufReader::new(tcp);
        let Some(req) = read_head(&mut io).await else {
            return;
        };
        let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
        let (route, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let request = self.tokens.lock().unwrap().take_at(token, Instant::now());
        let request = match request {
            Some(r) if r.route() == route => r,
            _ => return respond(&mut io, "404 Not Found", "unknown or expired token\n").await,
        };
        let backend = self.backend.clone();
        let upgrade = req
            .header("upgrade")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if upgrade == "websocket" {
            return crate::websocket::serve(
                backend,
                io,
                &req.query,
                req.all("sec-websocket-protocol"),
                req.header("sec-websocket-key").unwrap_or_default(),
                request,
            )
            .await;
        }
        if upgrade != "spdy/3.1" {
            return respond(
                &mut io,
                "400 Bad Request",
                "expected an upgrade to SPDY/3.1 or websocket\n",
            )
            .await;
        }
        let (ours, fallback): (&[&str], &str) = match request {
            Request::PortForward(_) => (&[protocol::PORT_FORWARD], protocol::PORT_FORWARD),
            _ => (protocol::SPDY_REMOTECOMMAND, "channel.k8s.io"),
        };
        let Some(proto) =
            protocol::negotiate(&req.all("x-stream-protocol-version"), ours, fallback)
        else {
            let body = format!("no supported protocol; supported: {}\n", ours.join(", "));
            return respond(&mut io, "403 Forbidden", &body).await;
        };
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {proto}\r\n\r\n"
        );
        if io.get_mut().write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        match request {
            Request::PortForward(pod) => crate::portforward::serve_spdy(backend, io, pod).await,
            r => crate::remotecommand::serve(backend, io, proto, r).await,
        }
    }
}
