//! Kubernetes streaming over WebSocket: the channel protocols
//! (`channel.k8s.io`, `base64.channel.k8s.io`, their v4 variants and v5) for
//! exec/attach, and for port-forward either `portforward.k8s.io` /
//! `v4.channel.k8s.io` with the port in the query (`?port=`) or
//! `SPDY/3.1+portforward.k8s.io`: a SPDY port-forward session carried in
//! binary messages. On the channel protocols every message is one
//! channel: first byte (or digit, for base64) is the channel number. With
//! `v5.channel.k8s.io`, a message on channel 255 closes the stream whose id
//! it carries (stdin: the process reads EOF).

use crate::protocol::{self, Outcome, ResizeDecoder, StdioChannels};
use crate::{Backend, Request, Streams};
use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{protocol::Role, Message};
use tokio_tungstenite::WebSocketStream;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: the client closed the stream named by the payload's first byte.
const CLOSE: u8 = 255;

/// SPDY tunnelled through WebSocket binary messages (client-go's
/// `NewSPDYOverWebsocketDialer`, `crictl port-forward --transport websocket`).
const SPDY_TUNNEL_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";
const WS_PORT_FORWARD: &[&str] = &[
    SPDY_TUNNEL_PORT_FORWARD,
    "portforward.k8s.io",
    "v4.channel.k8s.io",
];

/// The subprotocol to answer a client offering `offered` (every
/// `Sec-WebSocket-Protocol` value); a client that names none gets the last
/// of ours. None: nothing in common.
pub fn negotiate<B: Backend>(request: &Request<B>, offered: &[String]) -> Option<&'static str> {
    let ours = match request {
        Request::PortForward(_) => WS_PORT_FORWARD,
        _ => protocol::WS_REMOTECOMMAND,
    };
    protocol::negotiate(offered, ours, ours[ours.len() - 1])
}

/// Serve a session on a connection upgraded to WebSocket with subprotocol
/// `proto`; `query` is the URL's query (`port=` of a port-forward).
pub async fn serve<B, T>(backend: Arc<B>, io: T, query: &str, proto: &str, request: Request<B>)
where
    B: Backend,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    if proto == SPDY_TUNNEL_PORT_FORWARD {
        if let Request::PortForward(pod) = request {
            let (here, there) = tokio::io::duplex(64 * 1024);
            tokio::spawn(tunnel(ws, here));
            crate::portforward::serve_spdy(backend, there, pod).await;
        }
        return;
    }
    let base64 = proto.contains("base64");
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(32);
    let writer = tokio::spawn(async move {
        while let Some((ch, data)) = out_rx.recv().await {
            let msg = if base64 {
                let text = format!(
                    "{}{}",
                    (b'0' + ch) as char,
                    base64::engine::general_purpose::STANDARD.encode(&data)
                );
                Message::Text(text.into())
            } else {
                let mut b = Vec::with_capacity(data.len() + 1);
                b.push(ch);
                b.extend_from_slice(&data);
                Message::Binary(b.into())
            };
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        let _ = sink.send(normal_close()).await;
    });
    // Incoming messages: (channel, payload).
    let (in_tx, mut in_rx) = mpsc::channel::<(u8, Bytes)>(16);
    tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            let decoded = match m {
                Message::Binary(b) if !b.is_empty() => Some((b[0], b.slice(1..))),
                Message::Text(t) if !t.is_empty() => {
                    let t = t.as_str();
                    base64::engine::general_purpose::STANDARD
                        .decode(&t[1..])
                        .ok()
                        .map(|d| (t.as_bytes()[0].wrapping_sub(b'0'), Bytes::from(d)))
                }
                Message::Close(_) => break,
                _ => None,
            };
            if let Some(d) = decoded {
                if in_tx.send(d).await.is_err() {
                    break;
                }
            }
        }
    });

    if let Request::PortForward(pod) = &request {
        let port = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("port="))
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = out_tx
                .send((1, Bytes::from_static(b"missing ?port=")))
                .await;
            drop(out_tx);
            let _ = writer.await;
            return;
        };
        for ch in [0u8, 1] {
            let _ = out_tx
                .send((ch, Bytes::copy_from_slice(&port.to_le_bytes())))
                .await;
        }
        let conn = match backend.connect(pod, port).await {
            Ok(c) => c,
            Err(e) => {
                let _ = out_tx.send((1, Bytes::from(e.to_string()))).await;
                drop(out_tx);
                let _ = writer.await;
                return;
            }
        };
        let (mut rd, mut wr) = tokio::io::split(conn);
        let up = async move {
            while let Some((ch, b)) = in_rx.recv().await {
                if ch == 0 && wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        };
        let tx = out_tx.clone();
        let down = async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0
                    || tx
                        .send((0, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        };
        tokio::select! { _ = up => {}, _ = down => {} }
        drop(out_tx);
        let _ = writer.await;
        return;
    }

    let Some(Streams {
        stdin,
        stdout,
        stderr,
        tty,
    }) = request.streams()
    else {
        unreachable!("port-forward is handled above")
    };
    let mut chans = StdioChannels::default();
    let mut outputs = Vec::new();
    let out_channel = |ch: u8| {
        let (tx, mut rx) = mpsc::channel::<Bytes>(16);
        let out = out_tx.clone();
        let h = tokio::spawn(async move {
            let _ = out.send((ch, Bytes::new())).await;
            while let Some(b) = rx.recv().await {
                if out.send((ch, b)).await.is_err() {
                    return;
                }
            }
        });
        (tx, h)
    };
    if stdout {
        let (tx, h) = out_channel(STDOUT);
        chans.stdout = Some(tx);
        outputs.push(h);
    }
    if stderr && !tty {
        let (tx, h) = out_channel(STDERR);
        chans.stderr = Some(tx);
        outputs.push(h);
    }
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<(u32, u32)>(4);
    if stdin {
        chans.stdin = Some(stdin_rx);
    }
    if tty {
        chans.resize = Some(resize_rx);
    }
    tokio::spawn(async move {
        let mut d = ResizeDecoder::default();
        let mut stdin_tx = Some(stdin_tx);
        while let Some((ch, b)) = in_rx.recv().await {
            match ch {
                STDIN => {
                    if let Some(tx) = &stdin_tx {
                        let _ = tx.send(b).await;
                    }
                }
                CLOSE if b.first() == Some(&STDIN) => stdin_tx = None,
                RESIZE => {
                    for s in d.push(&b) {
                        let _ = resize_tx.send(s).await;
                    }
                }
                _ => {}
            }
        }
    });
    let outcome: Outcome = request.run(&backend, chans).await;
    for h in outputs {
        let _ = h.await;
    }
    let status_json = proto.starts_with("v4") || proto.starts_with("v5");
    if let Some(p) = outcome.error_payload(status_json) {
        let _ = out_tx.send((ERROR, Bytes::from(p))).await;
    }
    drop(out_tx);
    let _ = writer.await;
}

/// A close with status 1000: client-go reads a close without a status (1005)
/// as an error on every stream, the error stream (the exit code) included.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Carry a byte stream in WebSocket binary messages, both ways, until either
/// side ends; then close the WebSocket normally.
async fn tunnel<T>(ws: WebSocketStream<T>, bytes: tokio::io::DuplexStream)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(bytes);
    let up = async move {
        while let Some(Ok(m)) = source.next().await {
            match m {
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0
                || sink
                    .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
            {
                break;
            }
        }
        let _ = sink.send(normal_close()).await;
    };
    tokio::select! { _ = up => {}, _ = down => {} }
}
