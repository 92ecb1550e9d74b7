//! A raw HTTP/2 gRPC client for tests: frames written by hand and headers
//! encoded with an HPACK encoder (Huffman-coded strings and its dynamic
//! table, as grpc-go's encoder writes them), so a
//! request may carry any `:authority`, or none — which the `h2` client crate
//! refuses to send.

use prost::Message;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// How a request names its authority.
#[derive(Debug, Clone, Copy)]
pub enum Authority<'a> {
    Value(&'a str),
    Missing,
}

/// What the server answered on one stream.
#[derive(Debug, Default)]
pub struct Answer {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// The RST_STREAM error code, when the stream was reset.
    pub reset: Option<u32>,
    /// The GOAWAY error code, when the connection was closed.
    pub goaway: Option<u32>,
}

impl Answer {
    /// `grpc-status`, from the trailers or a trailers-only answer.
    pub fn grpc_status(&self) -> Option<i32> {
        self.trailers
            .iter()
            .chain(&self.headers)
            .find(|(n, _)| n == "grpc-status")
            .and_then(|(_, v)| v.parse().ok())
    }

    pub fn grpc_message(&self) -> String {
        self.trailers
            .iter()
            .chain(&self.headers)
            .find(|(n, _)| n == "grpc-message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The one gRPC message of a unary answer.
    pub fn message<M: Message + Default>(&self) -> M {
        assert!(self.body.len() >= 5, "no message in {self:?}");
        let len = u32::from_be_bytes(self.body[1..5].try_into().unwrap()) as usize;
        M::decode(&self.body[5..5 + len]).unwrap()
    }
}

/// One HTTP/2 connection to a unix socket.
pub struct RawH2 {
    io: UnixStream,
    encoder: httlib_hpack::Encoder<'static>,
    decoder: httlib_hpack::Decoder<'static>,
    next_stream: u32,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

impl RawH2 {
    pub async fn connect(socket: &Path) -> RawH2 {
        let mut io = UnixStream::connect(socket).await.unwrap();
        io.write_all(PREFACE).await.unwrap();
        io.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        RawH2 {
            io,
            encoder: httlib_hpack::Encoder::default(),
            decoder: httlib_hpack::Decoder::default(),
            next_stream: 1,
        }
    }

    /// A unary gRPC call; `extra` headers go after the standard ones.
    pub async fn unary(
        &mut self,
        authority: Authority<'_>,
        path: &str,
        request: &impl Message,
        extra: &[(&str, &str)],
    ) -> Answer {
        let stream = self.next_stream;
        self.next_stream += 2;
        let mut headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
        ];
        if let Authority::Value(a) = authority {
            headers.push((b":authority", a.as_bytes()));
        }
        headers.push((b"content-type", b"application/grpc"));
        headers.push((b"user-agent", b"grpc-go/1.49.0"));
        headers.push((b"te", b"trailers"));
        for (n, v) in extra {
            headers.push((n.as_bytes(), v.as_bytes()));
        }
        let mut block = Vec::new();
        for (n, v) in headers {
            // Huffman name and value, indexed, shortest representation.
            let field = (n.to_vec(), v.to_vec(), 0x1 | 0x2 | 0x4 | 0x10);
            self.encoder.encode(field, &mut block).unwrap();
        }
        let body = request.encode_to_vec();
        let mut data = vec![0];
        data.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(&body);
        let mut out = frame(HEADERS, END_HEADERS, stream, &block);
        out.extend(frame(DATA, END_STREAM, stream, &data));
        self.io.write_all(&out).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.read_answer(stream))
            .await
            .expect("no answer within 30s")
    }

    async fn read_answer(&mut self, stream: u32) -> Answer {
        let mut answer = Answer::default();
        let mut block = Vec::new();
        loop {
            let mut h = [0u8; 9];
            if self.io.read_exact(&mut h).await.is_err() {
                answer.goaway.get_or_insert(u32::MAX);
                return answer;
            }
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            let (kind, flags) = (h[3], h[4]);
            let sid = u32::from_be_bytes(h[5..9].try_into().unwrap()) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            self.io.read_exact(&mut payload).await.unwrap();
            match kind {
                SETTINGS if flags & 0x1 == 0 => {
                    self.io
                        .write_all(&frame(SETTINGS, 0x1, 0, &[]))
                        .await
                        .unwrap();
                }
                PING if flags & 0x1 == 0 => {
                    self.io
                        .write_all(&frame(PING, 0x1, 0, &payload))
                        .await
                        .unwrap();
                }
                GOAWAY => {
                    answer.goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
                    return answer;
                }
                // Header blocks of every stream go through the decoder, to keep
                // its table in step with the server's encoder.
                HEADERS | 0x9 => {
                    block.extend_from_slice(&payload);
                    if flags & END_HEADERS != 0 {
                        let mut fields = Vec::new();
                        self.decoder.decode(&mut block, &mut fields).unwrap();
                        let hs: Vec<(String, String)> = fields
                            .into_iter()
                            .map(|(n, v, _)| {
                                (
                                    String::from_utf8_lossy(&n).into_owned(),
                                    String::from_utf8_lossy(&v).into_owned(),
                                )
                            })
                            .collect();
                        block.clear();
                        if sid == stream {
                            if answer.headers.is_empty() {
                                answer.headers = hs;
                            } else {
                                answer.trailers = hs;
                            }
                        }
                    }
                    if sid == stream && flags & END_STREAM != 0 {
                        return answer;
                    }
                }
                DATA if sid == stream => {
                    answer.body.extend_from_slice(&payload);
                    if flags & END_STREAM != 0 {
                        return answer;
                    }
                }
                RST_STREAM if sid == stream => {
                    answer.reset = Some(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                    return answer;
                }
                _ => {}
            }
        }
    }
}
