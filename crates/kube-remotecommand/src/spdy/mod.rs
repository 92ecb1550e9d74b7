//! SPDY/3.1 as used by Kubernetes streaming (kubelet ↔ runtime): frames
//! (`frame`), the zlib header dictionary (`zlib`) and sessions with streams
//! and flow control (`session`). Both roles: the server accepts streams, the
//! client (used by tests and any future proxy) opens them.

pub mod frame;
pub mod session;
pub mod zlib;

pub use frame::Headers;
pub use session::{Role, Session, Stream, StreamReader, StreamWriter};

#[cfg(test)]
mod tests {
    use super::frame::{self, Frame};
    use super::zlib::{HeaderCompressor, HeaderDecompressor};
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn hdr(k: &str, v: &str) -> Headers {
        vec![(k.to_string(), v.to_string())]
    }

    #[tokio::test]
    async fn streams_carry_data_both_ways_beyond_the_initial_window() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (server, mut accepted) = Session::start(a, Role::Server);
        let (client, _none) = Session::start(b, Role::Client);
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();

        let c = client
            .open(hdr("streamtype", "stdin"), false)
            .await
            .unwrap();
        assert_eq!(c.id, 1);
        let p2 = payload.clone();
        let w = c.writer.clone();
        tokio::spawn(async move {
            w.write(&p2).await.unwrap();
            w.close().await.unwrap();
        });
        let mut s = accepted.recv().await.unwrap();
        assert_eq!(s.header("StreamType"), Some("stdin"));
        // Echo everything back on the same stream.
        let echo = tokio::spawn(async move {
            while let Some(b) = s.reader.read().await {
                s.writer.write(&b).await.unwrap();
            }
            s.writer.close().await.unwrap();
        });
        let mut r = c.reader;
        let mut got = Vec::new();
        while let Some(b) = r.read().await {
            got.extend_from_slice(&b);
        }
        echo.await.unwrap();
        assert_eq!(got.len(), payload.len());
        assert!(got == payload);
        server.close().await;
        client.closed().await;
    }

    /// Streams opened at once from many tasks reach the peer in id order,
    /// which refuses a lower id than one it has seen (PROTOCOL_ERROR).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_reach_the_peer_in_id_order() {
        const STREAMS: usize = 200;
        let (a, b) = tokio::io::duplex(1 << 20);
        let (server, mut accepted) = Session::start(a, Role::Server);
        let (client, _none) = Session::start(b, Role::Client);
        let opens: Vec<_> = (0..STREAMS)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let s = client
                        .open(hdr("requestid", &i.to_string()), false)
                        .await
                        .unwrap();
                    s.writer.write(b"x").await.unwrap();
                    s.writer.close().await.unwrap();
                    let mut r = s.reader;
                    // Ends with the server's FIN, or early with a reset.
                    let mut echoed = Vec::new();
                    while let Some(b) = r.read().await {
                        echoed.extend_from_slice(&b);
                    }
                    echoed
                })
            })
            .collect();
        let server_side = tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..STREAMS {
                let mut s = accepted.recv().await.unwrap();
                ids.push(s.id);
                tokio::spawn(async move {
                    while let Some(b) = s.reader.read().await {
                        s.writer.write(&b).await.unwrap();
                    }
                    s.writer.close().await.unwrap();
                });
            }
            ids
        });
        for o in opens {
            assert_eq!(o.await.unwrap(), b"x", "a stream was refused");
        }
        let ids = server_side.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        server.close().await;
        client.closed().await;
    }

    #[tokio::test]
    async fn peer_overrunning_its_window_gets_reset_and_ping_is_echoed() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (_server, mut accepted) = Session::start(a, Role::Server);
        let mut z = HeaderCompressor::new();
        // A peer that declared flow control and then breaks it.
        let settings = Frame::Settings {
            flags: 0,
            entries: vec![(
                0,
                frame::SETTINGS_INITIAL_WINDOW_SIZE,
                session::INITIAL_WINDOW as u32,
            )],
        };
        b.write_all(&frame::encode(&settings, &mut z))
            .await
            .unwrap();
        let syn = Frame::SynStream {
            stream_id: 1,
            assoc_id: 0,
            priority: 0,
            flags: 0,
            headers: hdr("streamtype", "stdin"),
        };
        b.write_all(&frame::encode(&syn, &mut z)).await.unwrap();
        let big = Frame::Data {
            stream_id: 1,
            flags: 0,
            data: vec![0u8; 70 * 1024].into(),
        };
        b.write_all(&frame::encode(&big, &mut z)).await.unwrap();
        b.write_all(&frame::encode(&Frame::Ping { id: 5 }, &mut z))
            .await
            .unwrap();
        let mut s = accepted.recv().await.unwrap();
        assert!(s.reader.read().await.is_none(), "stream was reset");
        let mut d = HeaderDecompressor::new();
        let mut seen = Vec::new();
        while !seen.contains(&Frame::Ping { id: 5 }) {
            let f = frame::read_frame(&mut b, &mut d).await.unwrap().unwrap();
            seen.push(f);
        }
        assert!(seen
            .iter()
            .any(|f| matches!(f, Frame::SynReply { stream_id: 1, .. })));
        assert!(seen.contains(&Frame::RstStream {
            stream_id: 1,
            status: frame::rst::FLOW_CONTROL_ERROR
        }));
        assert!(seen.contains(&Frame::Ping { id: 5 }));
    }

    /// The peer declares flow control (SETTINGS), then a PING round trip
    /// makes sure the session has seen it before data flows.
    async fn declare_flow_control(
        b: &mut tokio::io::DuplexStream,
        z: &mut HeaderCompressor,
        d: &mut HeaderDecompressor,
    ) {
        let settings = Frame::Settings {
            flags: 0,
            entries: vec![(
                0,
                frame::SETTINGS_INITIAL_WINDOW_SIZE,
                session::INITIAL_WINDOW as u32,
            )],
        };
        b.write_all(&frame::encode(&settings, z)).await.unwrap();
        b.write_all(&frame::encode(&Frame::Ping { id: 1 }, z))
            .await
            .unwrap();
        loop {
            if let Frame::Ping { id: 1 } = frame::read_frame(b, d).await.unwrap().unwrap() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn sender_waits_for_window_updates() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (server, _acc) = Session::start(a, Role::Server);
        let mut d = HeaderDecompressor::new();
        let mut z = HeaderCompressor::new();
        declare_flow_control(&mut b, &mut z, &mut d).await;
        let s = server.open(vec![], false).await.unwrap();
        let w = s.writer.clone();
        let done = tokio::spawn(async move { w.write(&vec![1u8; 100 * 1024]).await });
        let mut got = 0usize;
        // Without WINDOW_UPDATE exactly the initial window arrives.
        while got < session::INITIAL_WINDOW as usize {
            if let Frame::Data { data, .. } =
                frame::read_frame(&mut b, &mut d).await.unwrap().unwrap()
            {
                got += data.len();
            }
        }
        assert_eq!(got, session::INITIAL_WINDOW as usize);
        assert!(!done.is_finished());
        for id in [0, s.id] {
            let wu = Frame::WindowUpdate {
                stream_id: id,
                delta: 64 * 1024,
            };
            b.write_all(&frame::encode(&wu, &mut z)).await.unwrap();
        }
        done.await.unwrap().unwrap();
    }

    /// kubelet's and kubectl's SPDY library never sends WINDOW_UPDATE: output
    /// beyond the initial window must still reach such a peer.
    #[tokio::test]
    async fn peer_without_flow_control_receives_beyond_the_initial_window() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (server, _acc) = Session::start(a, Role::Server);
        let s = server.open(vec![], false).await.unwrap();
        let w = s.writer.clone();
        let total = 4 * session::INITIAL_WINDOW as usize;
        let done = tokio::spawn(async move { w.write(&vec![7u8; total]).await });
        let mut d = HeaderDecompressor::new();
        let mut got = 0usize;
        while got < total {
            if let Frame::Data { data, .. } =
                frame::read_frame(&mut b, &mut d).await.unwrap().unwrap()
            {
                got += data.len();
            }
        }
        assert_eq!(got, total);
        done.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn too_many_streams_are_refused() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let (server, mut accepted) = Session::start(a, Role::Server);
        let (client, _) = Session::start(b, Role::Client);
        let mut keep = Vec::new();
        for _ in 0..session::MAX_STREAMS + 5 {
            keep.push(client.open(vec![], false).await.unwrap());
        }
        // The refused ones are reset: reading them ends.
        let mut last = keep.pop().unwrap();
        assert!(last.reader.read().await.is_none());
        let mut n = 0;
        while accepted.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, session::MAX_STREAMS);
        assert_eq!(server.open_streams(), session::MAX_STREAMS);
    }
}
