//! A SPDY/3.1 session over one connection: a reader task that parses frames
//! and dispatches them to streams, a writer task that owns the compression
//! context and the socket's write half. Flow control both ways: data we
//! receive is credited back (WINDOW_UPDATE) as the application consumes it
//! and a peer that overruns its window gets RST_STREAM(FLOW_CONTROL_ERROR);
//! data we send waits for the peer's stream and session windows.
//! Memory is bounded: streams are capped, buffered input per stream is
//! bounded by our receive window, frames and header blocks are capped.

use super::frame::{self, rst, Frame, Headers, FLAG_FIN};
use super::zlib::{HeaderCompressor, HeaderDecompressor};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, watch, Notify};

/// Initial flow-control window (stream and session), per the spec.
pub const INITIAL_WINDOW: i64 = 64 * 1024;
/// Most streams open at once in a session; more are refused.
pub const MAX_STREAMS: usize = 1000;
/// Largest data frame we send.
const MAX_DATA_CHUNK: usize = 16 * 1024;
const MAX_WINDOW: i64 = 0x7fff_ffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens even-numbered streams.
    Server,
    /// Opens odd-numbered streams.
    Client,
}

enum Out {
    Frame(Frame),
    Close,
}

struct Entry {
    data_tx: Option<mpsc::UnboundedSender<Bytes>>,
    send_window: i64,
    recv_window: i64,
    local_fin: bool,
}

struct State {
    streams: HashMap<u32, Entry>,
    session_send: i64,
    session_recv: i64,
    initial_send: i64,
    next_local_id: u32,
    last_peer_id: u32,
    closed: bool,
    /// Whether the peer does flow control at all. Go's spdystream (kubelet,
    /// kubectl, crictl) never sends WINDOW_UPDATE or SETTINGS, so a server
    /// enforces windows only once the peer has sent one of them; they are
    /// counted from the start either way.
    peer_flow_control: bool,
}

struct Shared {
    role: Role,
    out: mpsc::Sender<Out>,
    /// Held from taking a stream id until its SYN_STREAM is queued: ids must
    /// reach the peer in increasing order, which refuses any other with
    /// PROTOCOL_ERROR (so must we: `last_peer_id`).
    open_order: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    window_changed: Notify,
    closed: watch::Sender<bool>,
}

/// A handle on the session (cheap to clone).
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

/// One stream: its headers, the peer's data, and a writer.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl Stream {
    /// Value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct StreamReader {
    id: u32,
    rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
}

#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
}

fn broken(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, msg.to_string())
}

impl Session {
    /// Start a session on `io`; returns it and the streams the peer opens.
    pub fn start<T>(io: T, role: Role) -> (Session, mpsc::UnboundedReceiver<Stream>)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(256);
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            role,
            out: out_tx,
            open_order: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                streams: HashMap::new(),
                session_send: INITIAL_WINDOW,
                session_recv: INITIAL_WINDOW,
                initial_send: INITIAL_WINDOW,
                next_local_id: if role == Role::Client { 1 } else { 2 },
                last_peer_id: 0,
                closed: false,
                // A client talks to servers such as this crate's, which
                // announce flow control in their first frame; a server learns
                // it from the peer's SETTINGS (sent before any stream) or
                // WINDOW_UPDATE.
                peer_flow_control: role == Role::Client,
            }),
            window_changed: Notify::new(),
            closed,
        });
        // First frame: declare that this side does flow control, so a peer
        // that does too enforces windows (Go peers ignore SETTINGS).
        let _ = shared.out.try_send(Out::Frame(Frame::Settings {
            flags: 0,
            entries: vec![(
                0,
                frame::SETTINGS_INITIAL_WINDOW_SIZE,
                INITIAL_WINDOW as u32,
            )],
        }));
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(rd, shared.clone(), in_tx));
        tokio::spawn(write_loop(wr, out_rx, shared.clone(), reader));
        (Session { shared }, in_rx)
    }

    /// Open a stream (client side of the k8s protocols).
    pub async fn open(&self, headers: Headers, fin: bool) -> io::Result<Stream> {
        let (tx, rx) = mpsc::unbounded_channel();
        let in_order = self.shared.open_order.lock().await;
        let id = {
            let mut st = self.shared.state.lock().unwrap();
            if st.closed {
                return Err(broken("session closed"));
            }
            let id = st.next_local_id;
            st.next_local_id += 2;
            let initial = st.initial_send;
            st.streams.insert(
                id,
                Entry {
                    data_tx: Some(tx),
                    send_window: initial,
                    recv_window: INITIAL_WINDOW,
                    local_fin: fin,
                },
            );
            id
        };
        self.shared
            .send(Frame::SynStream {
                stream_id: id,
                assoc_id: 0,
                priority: 0,
                flags: if fin { FLAG_FIN } else { 0 },
                headers: headers.clone(),
            })
            .await?;
        drop(in_order);
        Ok(self.shared.stream(id, headers, rx))
    }

    /// Send GOAWAY, flush what is queued and close the connection.
    pub async fn close(&self) {
        let last_good = self.shared.state.lock().unwrap().last_peer_id;
        let _ = self
            .shared
            .send(Frame::GoAway {
                last_good,
                status: 0,
            })
            .await;
        let _ = self.shared.out.send(Out::Close).await;
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        let mut rx = self.shared.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Number of streams currently tracked (for tests and limits).
    pub fn open_streams(&self) -> usize {
        self.shared.state.lock().unwrap().streams.len()
    }
}

impl Shared {
    async fn send(&self, f: Frame) -> io::Result<()> {
        self.out
            .send(Out::Frame(f))
            .await
            .map_err(|_| broken("session closed"))
    }

    fn stream(
        self: &Arc<Self>,
        id: u32,
        headers: Headers,
        rx: mpsc::UnboundedReceiver<Bytes>,
    ) -> Stream {
        Stream {
            id,
            headers,
            reader: StreamReader {
                id,
                rx,
                shared: self.clone(),
            },
            writer: StreamWriter {
                id,
                shared: self.clone(),
            },
        }
    }

    fn is_peer_id(&self, id: u32) -> bool {
        id != 0 && (id % 2 == 1) == (self.role == Role::Server)
    }

    /// Credit `n` consumed bytes back to the peer's windows.
    async fn consumed(&self, id: u32, n: usize) {
        if n == 0 {
            return;
        }
        let stream_open = {
            let mut st = self.state.lock().unwrap();
            st.session_recv += n as i64;
            match st.streams.get_mut(&id) {
                Some(e) if e.data_tx.is_some() => {
                    e.recv_window += n as i64;
                    true
                }
                _ => false,
            }
        };
        // A reader held back by a peer without flow control may go on.
        self.window_changed.notify_waiters();
        let delta = n as u32;
        let _ = self
            .send(Frame::WindowUpdate {
                stream_id: 0,
                delta,
            })
            .await;
        if stream_open {
            let _ = self
                .send(Frame::WindowUpdate {
                    stream_id: id,
                    delta,
                })
                .await;
        }
    }
}

impl StreamReader {
    /// Next chunk of the peer's data; `None` once the peer sent FIN or reset.
    pub async fn read(&mut self) -> Option<Bytes> {
        let b = self.rx.recv().await?;
        self.shared.consumed(self.id, b.len()).await;
        Some(b)
    }
}

impl StreamWriter {
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Send `data`, waiting for the peer's flow-control windows.
    pub async fn write(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = loop {
                let notified = self.shared.window_changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let mut st = self.shared.state.lock().unwrap();
                    if st.closed {
                        return Err(broken("session closed"));
                    }
                    let session_send = st.session_send;
                    let flow_control = st.peer_flow_control;
                    let e = st
                        .streams
                        .get_mut(&self.id)
                        .ok_or_else(|| broken("stream reset"))?;
                    if e.local_fin {
                        return Err(broken("stream already closed"));
                    }
                    let avail = if flow_control {
                        e.send_window.min(session_send).min(MAX_DATA_CHUNK as i64)
                    } else {
                        MAX_DATA_CHUNK as i64
                    };
                    if avail > 0 {
                        let n = (avail as usize).min(data.len());
                        e.send_window -= n as i64;
                        st.session_send -= n as i64;
                        break n;
                    }
                }
                notified.await;
            };
            self.shared
                .send(Frame::Data {
                    stream_id: self.id,
                    flags: 0,
                    data: Bytes::copy_from_slice(&data[..n]),
                })
                .await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Half-close: send FIN. Closing twice is a no-op.
    pub async fn close(&self) -> io::Result<()> {
        {
            let mut st = self.shared.state.lock().unwrap();
            let Some(e) = st.streams.get_mut(&self.id) else {
                return Ok(());
            };
            if e.local_fin {
                return Ok(());
            }
            e.local_fin = true;
            if e.data_tx.is_none() {
                st.streams.remove(&self.id);
            }
        }
        self.shared
            .send(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await
    }

    /// Abort the stream (RST_STREAM CANCEL).
    pub async fn reset(&self) {
        self.shared.state.lock().unwrap().streams.remove(&self.id);
        self.shared.window_changed.notify_waiters();
        let _ = self
            .shared
            .send(Frame::RstStream {
                stream_id: self.id,
                status: rst::CANCEL,
            })
            .await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    shared: Arc<Shared>,
    incoming: mpsc::UnboundedSender<Stream>,
) {
    let mut z = HeaderDecompressor::new();
    loop {
        match frame::read_frame(&mut rd, &mut z).await {
            Ok(Some(f)) => {
                if handle(&shared, &incoming, f).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("spdy session: {e}");
                let last_good = shared.state.lock().unwrap().last_peer_id;
                let _ = shared
                    .send(Frame::GoAway {
                        last_good,
                        status: 1, // PROTOCOL_ERROR
                    })
                    .await;
                let _ = shared.out.send(Out::Close).await;
                break;
            }
        }
    }
    {
        let mut st = shared.state.lock().unwrap();
        st.closed = true;
        st.streams.clear();
    }
    shared.window_changed.notify_waiters();
    shared.closed.send_replace(true);
}

async fn reset(shared: &Shared, stream_id: u32, status: u32) -> io::Result<()> {
    shared.send(Frame::RstStream { stream_id, status }).await
}

async fn handle(
    shared: &Arc<Shared>,
    incoming: &mpsc::UnboundedSender<Stream>,
    f: Frame,
) -> io::Result<()> {
    match f {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => {
            let refused = {
                let mut st = shared.state.lock().unwrap();
                if !shared.is_peer_id(stream_id) || stream_id <= st.last_peer_id {
                    Some(rst::PROTOCOL_ERROR)
                } else if st.streams.len() >= MAX_STREAMS {
                    st.last_peer_id = stream_id;
                    Some(rst::REFUSED_STREAM)
                } else {
                    st.last_peer_id = stream_id;
                    None
                }
            };
            if let Some(status) = refused {
                return reset(shared, stream_id, status).await;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            {
                let mut st = shared.state.lock().unwrap();
                let initial = st.initial_send;
                st.streams.insert(
                    stream_id,
                    Entry {
                        data_tx: (flags & FLAG_FIN == 0).then_some(tx),
                        send_window: initial,
                        recv_window: INITIAL_WINDOW,
                        local_fin: false,
                    },
                );
            }
            shared
                .send(Frame::SynReply {
                    stream_id,
                    flags: 0,
                    headers: vec![],
                })
                .await?;
            let _ = incoming.send(shared.stream(stream_id, headers, rx));
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let n = data.len() as i64;
            wait_for_room(shared, stream_id, n).await;
            let verdict = {
                let mut st = shared.state.lock().unwrap();
                st.session_recv -= n;
                // A peer without flow control is held back by
                // `wait_for_room` instead: only a declared window is a contract.
                let session_ok = st.session_recv >= 0 || !st.peer_flow_control;
                let fc = st.peer_flow_control;
                match st.streams.get_mut(&stream_id) {
                    None => Err(rst::INVALID_STREAM),
                    Some(e) if e.data_tx.is_none() => Err(9), // STREAM_ALREADY_CLOSED
                    Some(e) if (fc && n > e.recv_window) || !session_ok => {
                        st.streams.remove(&stream_id);
                        // A writer of the stream waiting for window must see it gone.
                        shared.window_changed.notify_waiters();
                        Err(rst::FLOW_CONTROL_ERROR)
                    }
                    Some(e) => {
                        e.recv_window -= n;
                        let delivered = n == 0 || e.data_tx.as_ref().unwrap().send(data).is_ok();
                        if flags & FLAG_FIN != 0 {
                            e.data_tx = None;
                            if e.local_fin {
                                st.streams.remove(&stream_id);
                            }
                        }
                        Ok(delivered)
                    }
                }
            };
            match verdict {
                // Nobody reads this stream any more: credit the bytes at once.
                Ok(false) => shared.consumed(stream_id, n as usize).await,
                Ok(true) => {}
                Err(status) => {
                    // Bytes of a dead stream still count against the session.
                    shared.state.lock().unwrap().session_recv += n;
                    if n > 0 {
                        shared
                            .send(Frame::WindowUpdate {
                                stream_id: 0,
                                delta: n as u32,
                            })
                            .await?;
                    }
                    reset(shared, stream_id, status).await?;
                }
            }
        }
        Frame::SynReply {
            stream_id, flags, ..
        }
        | Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0 {
                let mut st = shared.state.lock().unwrap();
                if let Some(e) = st.streams.get_mut(&stream_id) {
                    e.data_tx = None;
                    if e.local_fin {
                        st.streams.remove(&stream_id);
                    }
                }
            }
        }
        Frame::RstStream { stream_id, .. } => {
            shared.state.lock().unwrap().streams.remove(&stream_id);
            shared.window_changed.notify_waiters();
        }
        Frame::Settings { entries, .. } => {
            let mut st = shared.state.lock().unwrap();
            for (_, id, value) in entries {
                if id == frame::SETTINGS_INITIAL_WINDOW_SIZE && (value as i64) <= MAX_WINDOW {
                    st.peer_flow_control = true;
                    let delta = value as i64 - st.initial_send;
                    st.initial_send = value as i64;
                    for e in st.streams.values_mut() {
                        e.send_window += delta;
                    }
                }
            }
            drop(st);
            shared.window_changed.notify_waiters();
        }
        Frame::WindowUpdate { stream_id, delta } => {
            let mut st = shared.state.lock().unwrap();
            st.peer_flow_control = true;
            let delta = delta as i64;
            if stream_id == 0 {
                st.session_send = (st.session_send + delta).min(MAX_WINDOW);
            } else if let Some(e) = st.streams.get_mut(&stream_id) {
                e.send_window = (e.send_window + delta).min(MAX_WINDOW);
            }
            drop(st);
            shared.window_changed.notify_waiters();
        }
        Frame::Ping { id } => {
            // Echo the peer's pings; ours come back with our parity.
            if shared.is_peer_id(id) {
                shared.send(Frame::Ping { id }).await?;
            }
        }
        Frame::GoAway { .. } | Frame::Unknown { .. } => {}
    }
    Ok(())
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut out: mpsc::Receiver<Out>,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
) {
    let mut wr = BufWriter::new(wr);
    let mut z = HeaderCompressor::new();
    while let Some(Out::Frame(f)) = out.recv().await {
        if wr.write_all(&frame::encode(&f, &mut z)).await.is_err() {
            break;
        }
        if out.is_empty() && wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    // Give the peer a moment to close its side, then stop reading regardless.
    let mut closed = shared.closed.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(5), closed.wait_for(|c| *c)).await;
    reader.abort();
    {
        let mut st = shared.state.lock().unwrap();
        st.closed = true;
        st.streams.clear();
    }
    shared.window_changed.notify_waiters();
    shared.closed.send_replace(true);
}

/// Backpressure for peers that do no flow control (Go's spdystream: kubelet,
/// kubectl): instead of resetting a stream whose unread data exceeds our
/// window, stop reading the connection until the reader has drained it, as
/// Go's own SPDY servers do. Memory stays bounded by one window per stream.
async fn wait_for_room(shared: &Arc<Shared>, stream_id: u32, n: i64) {
    loop {
        let notified = shared.window_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let st = shared.state.lock().unwrap();
            if st.peer_flow_control || st.closed {
                return;
            }
            match st.streams.get(&stream_id) {
                Some(e) if e.data_tx.is_some() => {
                    // Room for the frame, or the buffer is empty (a frame
                    // larger than the whole window is let through alone).
                    if e.recv_window >= n || e.recv_window >= INITIAL_WINDOW {
                        return;
                    }
                }
                _ => return,
            }
        }
        notified.await;
    }
}
