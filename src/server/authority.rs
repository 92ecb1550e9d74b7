//! A front on each CRI connection that makes any `:authority` acceptable.
//!
//! gRPC clients disagree on the `:authority` of a request over a unix
//! socket: crictl sends `localhost`, grpc-go of kubelet ≤ 1.26 and
//! grpc-java send the socket path, grpc's C core sends it percent-encoded.
//! The `h2` crate under hyper resets a stream whose authority is not a valid
//! URI authority (`RST_STREAM(PROTOCOL_ERROR)`) before any service code runs.
//!
//! This front sits between the socket and hyper. Bytes from the client pass
//! through unchanged, except the header blocks (HEADERS + CONTINUATION
//! frames): each is decoded with the client's HPACK state, an authority that
//! is not a valid URI authority (a path, `%2F…`, empty) becomes `localhost`,
//! and the block is encoded again without the dynamic table (plain literals,
//! a never-indexed field stays never-indexed),
//! so the server's decoder state never depends on the client's. Bytes from
//! the server pass through unchanged; the front only reads the server's
//! SETTINGS_HEADER_TABLE_SIZE from them, which bounds the table the client's
//! encoder may use (applied once the client acknowledges it).

use bytes::{Buf, BytesMut};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
/// The HPACK table size every endpoint starts with (RFC 9113 §6.5.2).
const DEFAULT_TABLE_SIZE: usize = 4096;
/// Frames the front writes are at most this long: the smallest
/// SETTINGS_MAX_FRAME_SIZE a server may announce, so always allowed.
const MAX_OUT_FRAME: usize = 16 * 1024;
/// A header block larger than this, compressed (all its frames) or decoded
/// (as HPACK counts a field: name + value + 32), ends the connection.
/// hyper refuses decoded header lists over 16 KiB anyway.
const MAX_BLOCK: usize = 64 * 1024;
/// httlib-hpack's flag for a never-indexed field (RFC 7541 §6.2.3), in what
/// its decoder returns and its encoder takes.
const NEVER_INDEXED: u8 = 0x8;
/// Room made in the input buffer before each read from the socket.
const READ_CHUNK: usize = 16 * 1024;
/// What replaces an authority h2 would refuse.
const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";

/// A connection whose client header blocks are re-encoded on the way in.
pub struct AuthorityFront<IO> {
    io: IO,
    inbound: Inbound,
    outbound: SettingsScanner,
    /// Shared by both directions: the server announces, the client acks.
    table_sizes: TableSizes,
}

impl<IO> AuthorityFront<IO> {
    pub fn new(io: IO) -> Self {
        AuthorityFront {
            io,
            inbound: Inbound::new(),
            outbound: SettingsScanner::default(),
            table_sizes: TableSizes::default(),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityFront<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.inbound.out.is_empty() {
                let n = this.inbound.out.len().min(buf.remaining());
                buf.put_slice(&this.inbound.out[..n]);
                this.inbound.out.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.inbound.eof {
                return Poll::Ready(Ok(()));
            }
            this.inbound.raw.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.io), cx, &mut this.inbound.raw) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => this.inbound.finish(),
                Poll::Ready(Ok(_)) => this.inbound.process(&mut this.table_sizes)?,
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for AuthorityFront<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = std::task::ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.outbound.scan(&buf[..n], &mut this.table_sizes);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = std::task::ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for b in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(b.len());
            this.outbound.scan(&b[..take], &mut this.table_sizes);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO> std::fmt::Debug for AuthorityFront<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityFront")
            .field("table_sizes", &self.table_sizes)
            .finish_non_exhaustive()
    }
}

/// The HPACK table sizes the server announced: the one the client has
/// acknowledged, and those still waiting for the client's SETTINGS ACK (one
/// entry per SETTINGS frame, in order; `None` when it did not name a size).
#[derive(Debug)]
struct TableSizes {
    acknowledged: usize,
    pending: VecDeque<Option<usize>>,
}

impl Default for TableSizes {
    fn default() -> Self {
        TableSizes {
            acknowledged: DEFAULT_TABLE_SIZE,
            pending: VecDeque::new(),
        }
    }
}

impl TableSizes {
    /// The largest table the client's encoder may be using: until an ACK,
    /// it may already follow a new setting or still the old one.
    fn allowed(&self) -> usize {
        self.pending
            .iter()
            .flatten()
            .copied()
            .fold(self.acknowledged, usize::max)
    }

    fn acknowledge(&mut self) {
        if let Some(Some(size)) = self.pending.pop_front() {
            self.acknowledged = size;
        }
    }
}

/// Finds SETTINGS frames in what the server writes, without copying it.
#[derive(Default)]
struct SettingsScanner {
    header: [u8; FRAME_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
    /// The current frame's payload, kept only for a SETTINGS frame.
    settings: Option<Vec<u8>>,
}

impl SettingsScanner {
    fn scan(&mut self, mut bytes: &[u8], sizes: &mut TableSizes) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                if let Some(s) = &mut self.settings {
                    s.extend_from_slice(&bytes[..n]);
                }
                self.remaining -= n;
                bytes = &bytes[n..];
                if self.remaining == 0 {
                    self.settings_done(sizes);
                }
                continue;
            }
            let n = (FRAME_HEADER - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len < FRAME_HEADER {
                return;
            }
            self.header_len = 0;
            let h = FrameHeader::parse(&self.header);
            self.remaining = h.len;
            self.settings = (h.kind == SETTINGS && h.flags & ACK == 0).then(Vec::new);
            if self.remaining == 0 {
                self.settings_done(sizes);
            }
        }
    }

    fn settings_done(&mut self, sizes: &mut TableSizes) {
        let Some(payload) = self.settings.take() else {
            return;
        };
        let size = payload
            .chunks_exact(6)
            .filter(|e| u16::from_be_bytes([e[0], e[1]]) == SETTINGS_HEADER_TABLE_SIZE)
            .map(|e| u32::from_be_bytes([e[2], e[3], e[4], e[5]]) as usize)
            .next_back();
        sizes.pending.push_back(size);
    }
}

#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    fn parse(b: &[u8]) -> FrameHeader {
        FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize,
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    fn write(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
    }
}

enum Phase {
    /// Waiting for the client's connection preface.
    Preface,
    /// Reading frames.
    Frames,
    /// Not HTTP/2 with prior knowledge: everything passes unchanged and hyper
    /// answers it as it would without the front.
    Passthrough,
}

/// A header block being collected from a HEADERS frame and its CONTINUATIONs.
struct PendingBlock {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// Client → server: the bytes read, and the bytes hyper gets.
struct Inbound {
    raw: BytesMut,
    out: BytesMut,
    eof: bool,
    phase: Phase,
    /// Payload bytes of a passing frame still to copy.
    forward: usize,
    block: Option<PendingBlock>,
    decoder: httlib_hpack::Decoder<'static>,
    /// Writes plain literals only: it never touches its table.
    encoder: httlib_hpack::Encoder<'static>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Inbound {
    fn new() -> Self {
        let decoder = httlib_hpack::Decoder::with_dynamic_size(DEFAULT_TABLE_SIZE as u32);
        Inbound {
            raw: BytesMut::new(),
            out: BytesMut::new(),
            eof: false,
            phase: Phase::Preface,
            forward: 0,
            block: None,
            decoder,
            encoder: httlib_hpack::Encoder::default(),
        }
    }

    /// The client closed its side: whatever is left passes unchanged (a
    /// truncated frame is hyper's to report).
    fn finish(&mut self) {
        self.eof = true;
        let rest = self.raw.split();
        self.out.extend_from_slice(&rest);
    }

    /// Move as much of `raw` to `out` as complete input allows.
    fn process(&mut self, sizes: &mut TableSizes) -> io::Result<()> {
        loop {
            match self.phase {
                Phase::Passthrough => {
                    let rest = self.raw.split();
                    self.out.extend_from_slice(&rest);
                    return Ok(());
                }
                Phase::Preface => {
                    let n = self.raw.len().min(PREFACE.len());
                    if self.raw[..n] != PREFACE[..n] {
                        self.phase = Phase::Passthrough;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    let preface = self.raw.split_to(PREFACE.len());
                    self.out.extend_from_slice(&preface);
                    self.phase = Phase::Frames;
                }
                Phase::Frames => {
                    if self.forward > 0 {
                        let n = self.forward.min(self.raw.len());
                        let part = self.raw.split_to(n);
                        self.out.extend_from_slice(&part);
                        self.forward -= n;
                        if self.forward > 0 {
                            return Ok(());
                        }
                    }
                    if self.raw.len() < FRAME_HEADER {
                        return Ok(());
                    }
                    let h = FrameHeader::parse(&self.raw[..FRAME_HEADER]);
                    let is_header_frame = h.kind == HEADERS || h.kind == CONTINUATION;
                    if self.block.is_some() && h.kind != CONTINUATION {
                        return Err(invalid("a header block was interrupted by another frame"));
                    }
                    if !is_header_frame {
                        if h.kind == SETTINGS && h.flags & ACK != 0 {
                            sizes.acknowledge();
                        }
                        let header = self.raw.split_to(FRAME_HEADER);
                        self.out.extend_from_slice(&header);
                        self.forward = h.len;
                        continue;
                    }
                    let pending = self.block.as_ref().map_or(0, |b| b.fragment.len());
                    if pending + h.len > MAX_BLOCK {
                        return Err(invalid("header block too large"));
                    }
                    if self.raw.len() < FRAME_HEADER + h.len {
                        return Ok(());
                    }
                    let frame = self.raw.split_to(FRAME_HEADER + h.len);
                    self.header_frame(h, &frame[FRAME_HEADER..], sizes.allowed())?;
                }
            }
        }
    }

    /// `table_size`: the largest HPACK table the client may be using.
    fn header_frame(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
        table_size: usize,
    ) -> io::Result<()> {
        if h.kind == HEADERS {
            let mut p = payload;
            let mut pad = 0;
            if h.flags & PADDED != 0 {
                let (&n, rest) = p.split_first().ok_or_else(|| invalid("bad padding"))?;
                pad = n as usize;
                p = rest;
            }
            let mut priority = None;
            if h.flags & PRIORITY != 0 {
                if p.len() < 5 {
                    return Err(invalid("bad priority"));
                }
                priority = Some(p[..5].try_into().unwrap());
                p = &p[5..];
            }
            if pad > p.len() {
                return Err(invalid("bad padding"));
            }
            self.block = Some(PendingBlock {
                stream: h.stream,
                end_stream: h.flags & END_STREAM != 0,
                priority,
                fragment: p[..p.len() - pad].to_vec(),
            });
        } else {
            match &mut self.block {
                Some(b) if b.stream == h.stream => b.fragment.extend_from_slice(payload),
                _ => return Err(invalid("CONTINUATION without its HEADERS")),
            }
        }
        if h.flags & END_HEADERS != 0 {
            let block = self.block.take().unwrap();
            self.reencode(block, table_size)?;
        }
        Ok(())
    }

    fn reencode(&mut self, mut block: PendingBlock, table_size: usize) -> io::Result<()> {
        self.decoder.set_max_dynamic_size(table_size as u32);
        let mut rest = std::mem::take(&mut block.fragment);
        let mut encoded = Vec::with_capacity(rest.len() * 2 + 32);
        let mut decoded_size = 0;
        while !rest.is_empty() {
            // One field at a time (a size update yields none), so a block
            // that decodes to too much is stopped early.
            let mut fields = Vec::with_capacity(1);
            self.decoder
                .decode_exact(&mut rest, &mut fields)
                .map_err(|e| invalid(format!("HPACK: {e:?}")))?;
            for (name, mut value, flags) in fields {
                decoded_size += name.len() + value.len() + 32;
                if decoded_size > MAX_BLOCK {
                    return Err(invalid("header block too large"));
                }
                if name == b":authority" && !valid_authority(&value) {
                    value = REPLACEMENT_AUTHORITY.to_vec();
                }
                self.encoder
                    .encode_literal(name, value, flags & NEVER_INDEXED, &mut encoded)
                    .map_err(|e| invalid(format!("HPACK: {e:?}")))?;
            }
        }
        self.write_block(&block, &encoded);
        Ok(())
    }

    /// HEADERS (+ CONTINUATIONs) carrying `encoded`, no padding.
    fn write_block(&mut self, block: &PendingBlock, encoded: &[u8]) {
        let prio_len = if block.priority.is_some() { 5 } else { 0 };
        let first = encoded.len().min(MAX_OUT_FRAME - prio_len);
        let (head, mut rest) = encoded.split_at(first);
        let mut flags = 0;
        if block.end_stream {
            flags |= END_STREAM;
        }
        if block.priority.is_some() {
            flags |= PRIORITY;
        }
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        FrameHeader::write(
            &mut self.out,
            prio_len + head.len(),
            HEADERS,
            flags,
            block.stream,
        );
        if let Some(p) = block.priority {
            self.out.extend_from_slice(&p);
        }
        self.out.extend_from_slice(head);
        while !rest.is_empty() {
            let n = rest.len().min(MAX_OUT_FRAME);
            let (part, tail) = rest.split_at(n);
            let flags = if tail.is_empty() { END_HEADERS } else { 0 };
            FrameHeader::write(&mut self.out, n, CONTINUATION, flags, block.stream);
            self.out.extend_from_slice(part);
            rest = tail;
        }
    }
}

/// True when h2 accepts `value` as a request's `:authority`.
fn valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        FrameHeader::write(&mut b, payload.len(), kind, flags, stream);
        b.extend_from_slice(payload);
        b.to_vec()
    }

    /// Run `input` through the front in chunks of `chunk` bytes; returns what
    /// the server side reads.
    async fn through_front(input: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut front = AuthorityFront::new(server);
        for c in input.chunks(chunk) {
            client.write_all(c).await.unwrap();
        }
        drop(client);
        let mut out = Vec::new();
        front.read_to_end(&mut out).await?;
        Ok(out)
    }

    /// Decode the header blocks of `bytes` (after the preface) as the server
    /// would: its own decoder, starting empty.
    fn server_headers(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
        let mut d = httlib_hpack::Decoder::default();
        let mut p = &bytes[PREFACE.len()..];
        let mut blocks = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        while p.len() >= FRAME_HEADER {
            let h = FrameHeader::parse(p);
            let payload = &p[FRAME_HEADER..FRAME_HEADER + h.len];
            if h.kind == HEADERS || h.kind == CONTINUATION {
                let skip = if h.kind == HEADERS && h.flags & PRIORITY != 0 {
                    5
                } else {
                    0
                };
                assert_eq!(h.flags & PADDED, 0);
                cur.extend_from_slice(&payload[skip..]);
                if h.flags & END_HEADERS != 0 {
                    let mut hs = Vec::new();
                    d.decode(&mut cur, &mut hs).unwrap();
                    blocks.push(
                        hs.into_iter()
                            .map(|(n, v, _)| {
                                (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap())
                            })
                            .collect(),
                    );
                    cur.clear();
                }
            }
            p = &p[FRAME_HEADER + h.len..];
        }
        blocks
    }

    /// Huffman-coded strings, indexed in the dynamic table, the shortest
    /// representation: as grpc-go's encoder writes them.
    const AS_GRPC_GO: u8 = 0x1 | 0x2 | 0x4 | 0x10;

    fn encode(enc: &mut httlib_hpack::Encoder, hs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in hs {
            let field = (n.as_bytes().to_vec(), v.as_bytes().to_vec(), AS_GRPC_GO);
            enc.encode(field, &mut out).unwrap();
        }
        out
    }

    fn request_block(enc: &mut httlib_hpack::Encoder, authority: &str, path: &str) -> Vec<u8> {
        encode(
            enc,
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", authority),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ],
        )
    }

    fn authority_of(block: &[(String, String)]) -> &str {
        &block.iter().find(|(n, _)| n == ":authority").unwrap().1
    }

    #[tokio::test]
    async fn invalid_authorities_become_localhost_and_valid_ones_stay() {
        // The client's encoder indexes headers in its dynamic table, so the
        // second block refers to entries of the first.
        let mut enc = httlib_hpack::Encoder::default();
        let mut input = PREFACE.to_vec();
        input.extend(frame(SETTINGS, 0, 0, &[]));
        let cases = [
            ("/run/crid/crid.sock", "localhost"),
            ("%2Frun%2Fcrid%2Fcrid.sock", "localhost"),
            ("", "localhost"),
            ("/run/crid/crid.sock", "localhost"),
            ("localhost", "localhost"),
            ("127.0.0.1:1234", "127.0.0.1:1234"),
        ];
        for (i, (authority, _)) in cases.iter().enumerate() {
            let block = request_block(&mut enc, authority, "/runtime.v1.RuntimeService/Version");
            input.extend(frame(HEADERS, END_HEADERS, 1 + 2 * i as u32, &block));
            input.extend(frame(0x0, END_STREAM, 1 + 2 * i as u32, b"\0\0\0\0\0"));
        }
        for chunk in [1, 7, 4096] {
            let out = through_front(&input, chunk).await.unwrap();
            let blocks = server_headers(&out);
            assert_eq!(blocks.len(), cases.len());
            for (b, (_, want)) in blocks.iter().zip(cases) {
                assert_eq!(authority_of(b), want, "chunk {chunk}");
                assert_eq!(b[2].1, "/runtime.v1.RuntimeService/Version");
            }
            // Everything else passes unchanged: settings and data frames.
            assert!(out
                .windows(14)
                .any(|w| w == frame(0x0, END_STREAM, 1, b"\0\0\0\0\0")));
        }
    }

    #[tokio::test]
    async fn continuation_padding_and_priority_are_rebuilt() {
        let mut enc = httlib_hpack::Encoder::default();
        let block = request_block(&mut enc, "/x.sock", "/p");
        let (a, b) = block.split_at(block.len() / 2);
        let mut headers = vec![3u8]; // pad length
        headers.extend_from_slice(&[0, 0, 0, 0, 15]); // priority
        headers.extend_from_slice(a);
        headers.extend_from_slice(&[0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 5, &headers));
        input.extend(frame(CONTINUATION, END_HEADERS, 5, b));
        let out = through_front(&input, 3).await.unwrap();
        let h = FrameHeader::parse(&out[PREFACE.len()..]);
        assert_eq!(h.kind, HEADERS);
        assert_eq!(h.flags, PRIORITY | END_STREAM | END_HEADERS);
        assert_eq!(h.stream, 5);
        assert_eq!(authority_of(&server_headers(&out)[0]), "localhost");
    }

    #[tokio::test]
    async fn a_large_block_is_split_into_continuations() {
        let mut enc = httlib_hpack::Encoder::default();
        let big = "v".repeat(40_000);
        let block = encode(&mut enc, &[("x-big", &big)]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &block));
        let out = through_front(&input, 1000).await.unwrap();
        let blocks = server_headers(&out);
        assert_eq!(blocks[0][0].1.len(), 40_000);
        let first = FrameHeader::parse(&out[PREFACE.len()..]);
        assert!(first.len <= MAX_OUT_FRAME && first.flags & END_HEADERS == 0);
    }

    #[tokio::test]
    async fn a_never_indexed_field_stays_never_indexed() {
        let mut enc = httlib_hpack::Encoder::default();
        let mut block = Vec::new();
        let field = (b"authorization".to_vec(), b"secret".to_vec(), 0x8);
        enc.encode(field, &mut block).unwrap();
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &block));
        let out = through_front(&input, 100).await.unwrap();
        let payload = &out[PREFACE.len() + FRAME_HEADER..];
        assert_eq!(payload[0], 0x10, "never-indexed literal, new name");
        let mut d = httlib_hpack::Decoder::default();
        let mut fields = Vec::new();
        d.decode(&mut payload.to_vec(), &mut fields).unwrap();
        assert_eq!(
            fields,
            vec![(b"authorization".to_vec(), b"secret".to_vec(), 0x8)]
        );
    }

    #[tokio::test]
    async fn a_block_that_decodes_to_too_much_ends_the_connection() {
        // One 4000-byte field in the table, then referred to 20 times.
        let mut enc = httlib_hpack::Encoder::default();
        let big = "v".repeat(4000);
        let mut block = encode(&mut enc, &[("x-big", &big)]);
        for _ in 0..20 {
            block.extend(encode(&mut enc, &[("x-big", &big)]));
        }
        assert!(block.len() < 5000);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &block));
        assert!(through_front(&input, 1000).await.is_err());
    }

    #[tokio::test]
    async fn not_http2_passes_unchanged() {
        let input = b"GET / HTTP/1.1\r\nHost: /run/x.sock\r\n\r\n";
        assert_eq!(through_front(input, 5).await.unwrap(), input);
    }

    #[tokio::test]
    async fn broken_header_sequences_end_the_connection() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b"\x82"));
        assert!(through_front(&input, 100).await.is_err());
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, b"\x82"));
        input.extend(frame(0x0, 0, 1, b"x"));
        assert!(through_front(&input, 100).await.is_err());
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff\x0f"));
        assert!(through_front(&input, 100).await.is_err());
    }

    #[test]
    fn table_size_follows_the_servers_settings_once_acknowledged() {
        let mut sizes = TableSizes::default();
        let mut scan = SettingsScanner::default();
        let mut settings = Vec::new();
        settings.extend_from_slice(&SETTINGS_HEADER_TABLE_SIZE.to_be_bytes());
        settings.extend_from_slice(&100u32.to_be_bytes());
        let bytes = [frame(SETTINGS, 0, 0, &settings), frame(0x0, 0, 1, b"abc")].concat();
        for b in bytes.chunks(2) {
            scan.scan(b, &mut sizes);
        }
        // Before the ACK the client may still use the old, larger table.
        assert_eq!(sizes.allowed(), DEFAULT_TABLE_SIZE);
        sizes.acknowledge();
        assert_eq!(sizes.allowed(), 100);
        // A settings frame without the size keeps it.
        scan.scan(&frame(SETTINGS, 0, 0, &[]), &mut sizes);
        sizes.acknowledge();
        assert_eq!(sizes.allowed(), 100);
    }

    #[tokio::test]
    async fn a_size_update_over_the_servers_setting_is_refused() {
        let mut input = PREFACE.to_vec();
        // Dynamic table size update to 8192 (> 4096), then :method GET.
        // 0x3f + 8192 - 31 as an HPACK integer with a 5-bit prefix.
        let mut block = vec![0x3f, 0xe1, 0x3f];
        block.push(0x82);
        input.extend(frame(HEADERS, END_HEADERS, 1, &block));
        assert!(through_front(&input, 100).await.is_err());
    }

    #[test]
    fn authorities_h2_refuses() {
        assert!(valid_authority(b"localhost"));
        assert!(valid_authority(b"[::1]:80"));
        assert!(!valid_authority(b"/run/crid/crid.sock"));
        assert!(!valid_authority(b"%2Frun%2Fcrid.sock"));
        assert!(!valid_authority(b""));
    }
}
