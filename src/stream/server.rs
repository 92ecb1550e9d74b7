//! The streaming HTTP server: single-use tokens (random, 1 minute, at most
//! 1000 outstanding), URL routing (`/exec/`, `/attach/`, `/portforward/`),
//! and the HTTP/1.1 upgrade to SPDY/3.1 or WebSocket.

use super::protocol::{self, Outcome, StdioChannels};
use super::{AttachParams, ExecParams};
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub const TOKEN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TOKENS: usize = 1000;
const MAX_REQUEST_HEAD: u64 = 16 * 1024;

/// What a token stands for.
#[derive(Debug, Clone)]
pub enum Target {
    Exec(ExecParams),
    Attach(AttachParams),
    /// `netns`: the pod's network namespace; None for a host-network pod.
    PortForward {
        netns: Option<PathBuf>,
    },
}

impl Target {
    fn route(&self) -> &'static str {
        match self {
            Target::Exec(_) => "exec",
            Target::Attach(_) => "attach",
            Target::PortForward { .. } => "portforward",
        }
    }
}

#[derive(Default)]
pub struct TokenCache {
    map: HashMap<String, (Target, Instant)>,
}

impl TokenCache {
    pub fn insert_at(&mut self, target: Target, now: Instant) -> Result<String> {
        self.map
            .retain(|_, (_, t)| now.duration_since(*t) < TOKEN_TTL);
        if self.map.len() >= MAX_TOKENS {
            return Err(Error::Unavailable(format!(
                "too many outstanding streaming requests (max {MAX_TOKENS})"
            )));
        }
        loop {
            let token = random_token();
            if !self.map.contains_key(&token) {
                self.map.insert(token.clone(), (target, now));
                return Ok(token);
            }
        }
    }

    /// The token's target, once; `None` for unknown, used or expired tokens.
    pub fn take_at(&mut self, token: &str, now: Instant) -> Option<Target> {
        let (target, t) = self.map.remove(token)?;
        (now.duration_since(t) < TOKEN_TTL).then_some(target)
    }
}

fn random_token() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
}

pub struct Inner {
    pub containerd: Containerd,
    pub state_dir: PathBuf,
    pub tokens: Mutex<TokenCache>,
    pub addr: OnceLock<SocketAddr>,
    /// Write ends of stdin FIFOs crid holds, by container id.
    pub stdin_holds: StdinHolds,
}

/// See `StreamService::hold_stdin`.
pub type StdinHolds = Arc<Mutex<HashMap<String, std::fs::File>>>;

impl Inner {
    pub fn url_for(&self, target: Target) -> Result<String> {
        let addr = *self
            .addr
            .get()
            .ok_or_else(|| Error::Unavailable("streaming server not started".into()))?;
        let route = target.route();
        let token = self
            .tokens
            .lock()
            .unwrap()
            .insert_at(target, Instant::now())?;
        Ok(format!("http://{addr}/{route}/{token}"))
    }

    /// Run an exec or attach against `io`.
    pub async fn run(&self, target: &Target, io: StdioChannels) -> Outcome {
        match target {
            Target::Exec(p) => Outcome::from_result(
                super::exec::run(
                    &self.containerd,
                    &self.state_dir,
                    &p.container_id,
                    &p.cmd,
                    p.tty,
                    io,
                    None,
                )
                .await,
            ),
            Target::Attach(p) => {
                let close_stdin_at_end = (p.stdin_once && !p.tty).then(|| self.stdin_holds.clone());
                match super::attach::run(
                    &self.containerd,
                    &self.state_dir,
                    &p.container_id,
                    p.tty,
                    io,
                    close_stdin_at_end,
                )
                .await
                {
                    Ok(()) => Outcome::Exited(0),
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Target::PortForward { .. } => Outcome::Failed("not an exec or attach".into()),
        }
    }
}

/// Bind and serve in the background; returns the bound address.
pub async fn listen(inner: Arc<Inner>, address: &str) -> Result<SocketAddr> {
    let l = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::io(format!("bind streaming server on {address}"), e))?;
    let addr = l
        .local_addr()
        .map_err(|e| Error::io("streaming address", e))?;
    let _ = inner.addr.set(addr);
    tokio::spawn(async move {
        loop {
            match l.accept().await {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(serve_conn(inner.clone(), tcp));
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

struct Request {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Request {
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

async fn read_head(io: &mut BufReader<tokio::net::TcpStream>) -> Option<Request> {
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
    Some(Request {
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

async fn serve_conn(inner: Arc<Inner>, tcp: tokio::net::TcpStream) {
    let mut io = BufReader::new(tcp);
    let Some(req) = read_head(&mut io).await else {
        return;
    };
    let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
    let (route, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = inner.tokens.lock().unwrap().take_at(token, Instant::now());
    let target = match target {
        Some(t) if t.route() == route => t,
        _ => return respond(&mut io, "404 Not Found", "unknown or expired token\n").await,
    };
    let upgrade = req
        .header("upgrade")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if upgrade == "websocket" {
        return super::websocket::serve(
            inner,
            io,
            &req.query,
            req.all("sec-websocket-protocol"),
            req.header("sec-websocket-key").unwrap_or_default(),
            target,
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
    let (ours, fallback): (&[&str], &str) = match target {
        Target::PortForward { .. } => (&[protocol::PORT_FORWARD], protocol::PORT_FORWARD),
        _ => (protocol::SPDY_REMOTECOMMAND, "channel.k8s.io"),
    };
    let Some(proto) = protocol::negotiate(&req.all("x-stream-protocol-version"), ours, fallback)
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
    match target {
        Target::PortForward { netns } => super::portforward::serve_spdy(io, netns).await,
        t => super::remotecommand::serve(inner, io, proto, t).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf() -> Target {
        Target::PortForward {
            netns: Some("/x".into()),
        }
    }

    #[test]
    fn tokens_are_single_use_and_expire() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        let a = c.insert_at(pf(), t0).unwrap();
        assert!(a.len() >= 8 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(c.take_at(&a, t0).is_some());
        assert!(c.take_at(&a, t0).is_none(), "reused");
        let b = c.insert_at(pf(), t0).unwrap();
        assert!(c.take_at(&b, t0 + TOKEN_TTL).is_none(), "expired");
        assert!(c.take_at("nope", t0).is_none());
    }

    #[test]
    fn at_most_a_thousand_outstanding_tokens() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        for _ in 0..MAX_TOKENS {
            c.insert_at(pf(), t0).unwrap();
        }
        assert!(matches!(c.insert_at(pf(), t0), Err(Error::Unavailable(_))));
        // Expired ones make room again.
        assert!(c.insert_at(pf(), t0 + TOKEN_TTL).is_ok());
    }
}
