//! SPDY/3.1 frames: encoding and decoding of one frame at a time. Header
//! blocks go through the session's zlib contexts (`zlib.rs`). Decoding never
//! trusts a length field: frames are capped at `MAX_FRAME_LEN`, header counts
//! and lengths are checked against the bytes actually present.

use super::zlib::{HeaderCompressor, HeaderDecompressor, ZlibError};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const VERSION: u16 = 3;
/// Largest frame payload accepted from a peer.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;
pub const FLAG_FIN: u8 = 0x01;

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes.
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const FLOW_CONTROL_ERROR: u32 = 7;
    pub const STREAM_IN_USE: u32 = 8;
    pub const FRAME_TOO_LARGE: u32 = 11;
}

pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// Header name/value pairs (names lower-case on the wire).
pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        assoc_id: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// (flags, id, value) entries.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type we do not know (ignored, per the spec).
    Unknown {
        kind: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN} byte limit")]
    TooLarge(usize),
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    #[error("header block: {0}")]
    Headers(#[from] ZlibError),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Errors after which the session's state (zlib context) is unusable.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::Malformed(_))
    }
}

const MASK31: u32 = 0x7fff_ffff;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Serialise a header block (before compression).
pub fn encode_header_block(headers: &Headers) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (n, v) in headers {
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n.to_ascii_lowercase().as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

/// Parse a decompressed header block; every length is checked.
pub fn decode_header_block(b: &[u8]) -> Result<Headers, FrameError> {
    let bad = FrameError::Malformed("header block");
    if b.len() < 4 {
        return Err(bad);
    }
    let count = be32(b) as usize;
    // Each pair needs at least 8 bytes: bounds the allocation below.
    if count > (b.len() - 4) / 8 {
        return Err(bad);
    }
    let mut pos = 4;
    let take = |pos: &mut usize| -> Result<String, FrameError> {
        if b.len() < *pos + 4 {
            return Err(FrameError::Malformed("header block"));
        }
        let n = be32(&b[*pos..]) as usize;
        *pos += 4;
        if b.len() - *pos < n {
            return Err(FrameError::Malformed("header block"));
        }
        let s = String::from_utf8_lossy(&b[*pos..*pos + n]).into_owned();
        *pos += n;
        Ok(s)
    };
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take(&mut pos)?;
        let value = take(&mut pos)?;
        headers.push((name.to_ascii_lowercase(), value));
    }
    Ok(headers)
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    let len = payload.len() as u32;
    out.push(flags);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

/// Encode a frame; header blocks are compressed with `z`.
pub fn encode(frame: &Frame, z: &mut HeaderCompressor) -> Vec<u8> {
    match frame {
        Frame::SynStream {
            stream_id,
            assoc_id,
            priority,
            flags,
            headers,
        } => {
            let mut p = Vec::new();
            p.extend_from_slice(&(stream_id & MASK31).to_be_bytes());
            p.extend_from_slice(&(assoc_id & MASK31).to_be_bytes());
            p.push((priority & 0x7) << 5);
            p.push(0); // slot
            p.extend_from_slice(&z.compress(&encode_header_block(headers)));
            control(SYN_STREAM, *flags, &p)
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        }
        | Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            let kind = if matches!(frame, Frame::SynReply { .. }) {
                SYN_REPLY
            } else {
                HEADERS
            };
            let mut p = Vec::new();
            p.extend_from_slice(&(stream_id & MASK31).to_be_bytes());
            p.extend_from_slice(&z.compress(&encode_header_block(headers)));
            control(kind, *flags, &p)
        }
        Frame::RstStream { stream_id, status } => {
            let mut p = (stream_id & MASK31).to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(RST_STREAM, 0, &p)
        }
        Frame::Settings { flags, entries } => {
            let mut p = (entries.len() as u32).to_be_bytes().to_vec();
            for (f, id, v) in entries {
                p.push(*f);
                p.extend_from_slice(&id.to_be_bytes()[1..]);
                p.extend_from_slice(&v.to_be_bytes());
            }
            control(SETTINGS, *flags, &p)
        }
        Frame::Ping { id } => control(PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good, status } => {
            let mut p = (last_good & MASK31).to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(GOAWAY, 0, &p)
        }
        Frame::WindowUpdate { stream_id, delta } => {
            let mut p = (stream_id & MASK31).to_be_bytes().to_vec();
            p.extend_from_slice(&(delta & MASK31).to_be_bytes());
            control(WINDOW_UPDATE, 0, &p)
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let mut out = Vec::with_capacity(8 + data.len());
            out.extend_from_slice(&(stream_id & MASK31).to_be_bytes());
            out.push(*flags);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(data);
            out
        }
        Frame::Unknown { kind } => control(*kind, 0, &[]),
    }
}

/// Payload length announced by an 8-byte frame header.
pub fn payload_len(head: &[u8; 8]) -> usize {
    be32(&head[4..]) as usize & 0x00ff_ffff
}

/// Decode one frame from its 8-byte header and payload.
pub fn decode(
    head: &[u8; 8],
    payload: Bytes,
    z: &mut HeaderDecompressor,
) -> Result<Frame, FrameError> {
    let flags = head[4];
    if head[0] & 0x80 == 0 {
        return Ok(Frame::Data {
            stream_id: be32(head) & MASK31,
            flags,
            data: payload,
        });
    }
    let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let p = &payload[..];
    let need = |n: usize, what: &'static str| {
        if p.len() < n {
            Err(FrameError::Malformed(what))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        SYN_STREAM => {
            need(10, "SYN_STREAM")?;
            let block = z.decompress(&p[10..])?;
            Frame::SynStream {
                stream_id: be32(p) & MASK31,
                assoc_id: be32(&p[4..]) & MASK31,
                priority: p[8] >> 5,
                flags,
                headers: decode_header_block(&block)?,
            }
        }
        SYN_REPLY | HEADERS => {
            need(4, "SYN_REPLY")?;
            let block = z.decompress(&p[4..])?;
            let stream_id = be32(p) & MASK31;
            let headers = decode_header_block(&block)?;
            if kind == SYN_REPLY {
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers,
                }
            } else {
                Frame::Headers {
                    stream_id,
                    flags,
                    headers,
                }
            }
        }
        RST_STREAM => {
            need(8, "RST_STREAM")?;
            Frame::RstStream {
                stream_id: be32(p) & MASK31,
                status: be32(&p[4..]),
            }
        }
        SETTINGS => {
            need(4, "SETTINGS")?;
            let n = be32(p) as usize;
            if n > (p.len() - 4) / 8 {
                return Err(FrameError::Malformed("SETTINGS"));
            }
            let entries = (0..n)
                .map(|i| {
                    let e = &p[4 + i * 8..];
                    (e[0], be32(e) & 0x00ff_ffff, be32(&e[4..]))
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        PING => {
            need(4, "PING")?;
            Frame::Ping { id: be32(p) }
        }
        GOAWAY => {
            need(8, "GOAWAY")?;
            Frame::GoAway {
                last_good: be32(p) & MASK31,
                status: be32(&p[4..]),
            }
        }
        WINDOW_UPDATE => {
            need(8, "WINDOW_UPDATE")?;
            Frame::WindowUpdate {
                stream_id: be32(p) & MASK31,
                delta: be32(&p[4..]) & MASK31,
            }
        }
        kind => Frame::Unknown { kind },
    })
}

/// Read one frame; `Ok(None)` on a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    z: &mut HeaderDecompressor,
) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = payload_len(&head);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    // Grow with the bytes that actually arrive, not with the length field.
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    let got = r.take(len as u64).read_to_end(&mut payload).await?;
    if got < len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    decode(&head, payload.into(), z).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                assoc_id: 0,
                priority: 3,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "error"), ("port", "8080")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: h(&[("x", "y\0z")]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: rst::CANCEL,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), (1, 4, 100)],
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good: 9,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 65536,
            },
            Frame::Data {
                stream_id: 11,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 13,
                flags: 0,
                data: Bytes::new(),
            },
        ]
    }

    #[tokio::test]
    async fn every_frame_kind_round_trips_through_one_session_context() {
        let mut c = HeaderCompressor::new();
        let mut d = HeaderDecompressor::new();
        let frames = all_frames();
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(encode(f, &mut c));
        }
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(&read_frame(&mut r, &mut d).await.unwrap().unwrap(), f);
        }
        assert!(read_frame(&mut r, &mut d).await.unwrap().is_none());
    }

    #[test]
    fn header_block_with_lying_count_is_rejected() {
        let mut b = encode_header_block(&h(&[("a", "b")]));
        b[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_header_block(&b).is_err());
        let mut b = encode_header_block(&h(&[("a", "b")]));
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_header_block(&b).is_err());
    }

    #[tokio::test]
    async fn huge_length_field_is_rejected_before_allocating() {
        let head = [0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff];
        let mut d = HeaderDecompressor::new();
        let mut r = &head[..];
        // 16 MiB - 1 is within the cap; the read then fails on EOF, not OOM.
        assert!(read_frame(&mut r, &mut d).await.is_err());
        assert_eq!(payload_len(&head), 0xff_ffff);
    }

    #[tokio::test]
    async fn random_bytes_never_panic_the_parser() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5bd1);
        for round in 0..3000 {
            let len = rng.gen_range(0..300);
            let mut wire: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if round % 2 == 0 && wire.len() >= 8 {
                // Make it look like a SPDY/3 control frame with a plausible length.
                wire[0] = 0x80;
                wire[1] = 3;
                wire[3] = rng.gen_range(0..12);
                let plen = (wire.len() - 8) as u32;
                wire[5..8].copy_from_slice(&plen.to_be_bytes()[1..]);
            }
            let mut d = HeaderDecompressor::new();
            let mut r = &wire[..];
            for _ in 0..4 {
                match read_frame(&mut r, &mut d).await {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }
    }

    #[tokio::test]
    async fn mutated_valid_frames_never_panic_the_parser() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..2000 {
            let mut c = HeaderCompressor::new();
            let mut wire = Vec::new();
            for f in all_frames() {
                wire.extend(encode(&f, &mut c));
            }
            for _ in 0..rng.gen_range(1..6) {
                let i = rng.gen_range(0..wire.len());
                wire[i] = rng.gen();
            }
            let mut d = HeaderDecompressor::new();
            let mut r = &wire[..];
            for _ in 0..12 {
                match read_frame(&mut r, &mut d).await {
                    Ok(Some(_)) => continue,
                    Err(e) if !e.is_fatal() => continue,
                    _ => break,
                }
            }
        }
    }
}
