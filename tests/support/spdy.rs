//! A kubectl-like SPDY/3.1 client for tests, built on kube-remotecommand's SPDY session (the crate crid serves with).

use kube_remotecommand::spdy::{Role, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send an HTTP upgrade request; returns the status code, response head and the socket.
pub async fn upgrade(url: &str, extra: &str) -> (u16, String, tokio::net::TcpStream) {
    let addr = url
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    upgrade_with_host(url, Some(addr), extra).await
}

/// `upgrade` with `host` as the Host header (`None`: no Host header at all).
pub async fn upgrade_with_host(
    url: &str,
    host: Option<&str>,
    extra: &str,
) -> (u16, String, tokio::net::TcpStream) {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let req = format!("GET /{path} HTTP/1.1\r\n{host}Connection: Upgrade\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let code = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (code, head, s)
}

pub async fn spdy(url: &str, protocols: &[&str]) -> (u16, String, Option<Session>) {
    let mut extra = "Upgrade: SPDY/3.1\r\n".to_string();
    for p in protocols {
        extra.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    let (code, head, s) = upgrade(url, &extra).await;
    let session = (code == 101).then(|| Session::start(s, Role::Client).0);
    (code, head, session)
}

pub fn h(kind: &str) -> Vec<(String, String)> {
    vec![("streamtype".into(), kind.into())]
}

pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub error: String,
}

pub async fn read_all(mut r: kube_remotecommand::spdy::StreamReader) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = r.read().await {
        v.extend_from_slice(&b);
    }
    v
}

/// A kubectl-like exec over SPDY v4 without tty.
pub async fn spdy_exec(url: &str, stdin: Option<&[u8]>) -> ExecResult {
    let (code, head, session) = spdy(url, &["v4.channel.k8s.io", "channel.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    assert!(
        head.contains("X-Stream-Protocol-Version: v4.channel.k8s.io"),
        "{head}"
    );
    let session = session.unwrap();
    let error = session.open(h("error"), false).await.unwrap();
    error.writer.close().await.unwrap();
    let input = match stdin {
        Some(_) => Some(session.open(h("stdin"), false).await.unwrap()),
        None => None,
    };
    let out = session.open(h("stdout"), true).await.unwrap();
    let err = session.open(h("stderr"), true).await.unwrap();
    if let (Some(s), Some(data)) = (input, stdin) {
        s.writer.write(data).await.unwrap();
        s.writer.close().await.unwrap();
    }
    let (stdout, stderr, error) = tokio::join!(
        read_all(out.reader),
        read_all(err.reader),
        read_all(error.reader)
    );
    ExecResult {
        stdout,
        stderr,
        error: String::from_utf8(error).unwrap(),
    }
}

/// A SPDY session tunnelled through WebSocket binary messages, as client-go's
/// `NewSPDYOverWebsocketDialer` (crictl port-forward --transport websocket)
/// makes it: subprotocol `SPDY/3.1+<protocol>`. Returns the negotiated
/// subprotocol and the session.
pub async fn spdy_over_websocket(url: &str, protocol: &str) -> (String, Session) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("SPDY/3.1+{protocol}").parse().unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    let negotiated = resp.headers()["sec-websocket-protocol"]
        .to_str()
        .unwrap()
        .to_string();
    let (here, there) = tokio::io::duplex(64 * 1024);
    let (mut rd, mut wr) = tokio::io::split(here);
    let (mut sink, mut source) = ws.split();
    tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            if let Message::Binary(b) = m {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0
                || sink
                    .send(Message::Binary(buf[..n].to_vec().into()))
                    .await
                    .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let (session, _incoming) = Session::start(there, Role::Client);
    (negotiated, session)
}

/// Headers of one port-forward stream (`data` or `error`) of request `id`.
pub fn forward_headers(kind: &str, port: u16, id: u32) -> Vec<(String, String)> {
    vec![
        ("streamtype".to_string(), kind.to_string()),
        ("port".into(), port.to_string()),
        ("requestid".into(), id.to_string()),
    ]
}

/// `GET /` over HTTP/1.0 through a port-forward session to `port`, tried
/// again (20 times at most) until the answer contains `needle`: the server
/// needs a moment to listen. Returns the last answer.
pub async fn forwarded_http_get(session: &Session, port: u16, needle: &str) -> String {
    let mut answer = String::new();
    for i in 0..20 {
        let hdr = |kind| forward_headers(kind, port, i);
        let error = session.open(hdr("error"), true).await.unwrap();
        let data = session.open(hdr("data"), false).await.unwrap();
        data.writer.write(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        data.writer.close().await.unwrap();
        answer = String::from_utf8_lossy(&read_all(data.reader).await).into_owned();
        let _ = read_all(error.reader).await;
        if answer.contains(needle) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    answer
}

/// One SPDY/3.1 frame as read off the wire by `raw_spdy_exec`: `kind` is the
/// control frame type, None for a data frame.
#[derive(Debug)]
pub struct RawFrame {
    pub kind: Option<u16>,
    pub stream_id: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

/// An exec with the `error` and `stdout` streams, spoken in SPDY/3.1 bytes
/// written and read here by hand (draft-mbelshe-httpbis-spdy-00 layout), not
/// by kube-remotecommand's frame code: a mistake shared by the crate's server
/// and its client cannot pass unnoticed. The header blocks are zlib without
/// SPDY's dictionary (no FDICT flag, which a zlib reader accepts); the
/// server's are not decoded. Returns the server's frames until it closes the
/// connection (at most 1000 frames, 30 s).
pub async fn raw_spdy_exec(url: &str) -> Vec<RawFrame> {
    let (code, head, mut s) = upgrade(
        url,
        "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n",
    )
    .await;
    assert_eq!(code, 101, "{head}");
    let mut z = flate2::Compress::new(flate2::Compression::default(), true);
    for (id, kind) in [(1u32, "error"), (3, "stdout")] {
        // Header block: pair count, then length-prefixed names and values.
        let mut block = Vec::new();
        block.extend(1u32.to_be_bytes());
        for text in ["streamtype", kind] {
            block.extend((text.len() as u32).to_be_bytes());
            block.extend(text.as_bytes());
        }
        let mut packed = Vec::with_capacity(block.len() + 64);
        z.compress_vec(&block, &mut packed, flate2::FlushCompress::Sync)
            .unwrap();
        // SYN_STREAM: control bit + version 3, type 1, flags FIN, 24-bit
        // length; stream id, associated id 0, priority 0, slot 0.
        let len = (10 + packed.len()) as u32;
        let mut frame = vec![0x80, 0x03, 0x00, 0x01, 0x01];
        frame.extend(&len.to_be_bytes()[1..]);
        frame.extend(id.to_be_bytes());
        frame.extend([0, 0, 0, 0, 0, 0]);
        frame.extend(packed);
        s.write_all(&frame).await.unwrap();
    }
    let read = async {
        let mut frames = Vec::new();
        let mut head = [0u8; 8];
        while frames.len() < 1000 && s.read_exact(&mut head).await.is_ok() {
            let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).await.unwrap();
            let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let frame = if head[0] & 0x80 != 0 {
                assert_eq!(word >> 16, 0x8003, "control bit and version 3");
                let kind = (word & 0xffff) as u16;
                // SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS and
                // WINDOW_UPDATE start with a stream id.
                let stream_id = match kind {
                    1 | 2 | 3 | 8 | 9 => u32::from_be_bytes(payload[..4].try_into().unwrap()),
                    _ => 0,
                };
                RawFrame {
                    kind: Some(kind),
                    stream_id,
                    flags: head[4],
                    payload,
                }
            } else {
                RawFrame {
                    kind: None,
                    stream_id: word,
                    flags: head[4],
                    payload,
                }
            };
            frames.push(frame);
        }
        frames
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("the server ends the session")
}
