//! The Kubernetes remotecommand protocol (exec, attach) over SPDY: the client
//! opens streams named by their `streamtype` header (error, stdin, stdout,
//! stderr, resize); once the expected ones are there the command runs, and
//! its outcome is written on the error stream before the session closes.

use crate::protocol::{ResizeDecoder, StdioChannels};
use crate::spdy::{Role, Session, Stream, StreamReader, StreamWriter};
use crate::{Backend, Request, Streams};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the client has to open the streams it asked for.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Forward a channel's output to a stream, then half-close it.
fn output_to(w: StreamWriter) -> (mpsc::Sender<Bytes>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let h = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write(&b).await.is_err() {
                return;
            }
        }
        let _ = w.close().await;
    });
    (tx, h)
}

fn input_from(mut r: StreamReader) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(b) = r.read().await {
            if tx.send(b).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn resize_from(mut r: StreamReader) -> mpsc::Receiver<(u32, u32)> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut d = ResizeDecoder::default();
        while let Some(b) = r.read().await {
            for size in d.push(&b) {
                if tx.send(size).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Serve one exec/attach session on an upgraded connection.
pub async fn serve<B, T>(backend: Arc<B>, io: T, protocol: &str, request: Request<B>)
where
    B: Backend,
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some(streams) = request.streams() else {
        return;
    };
    let Streams {
        stdin,
        stdout,
        stderr,
        tty,
    } = streams;
    let version = match protocol {
        "v4.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    };
    let mut expected = vec!["error"];
    if stdin {
        expected.push("stdin");
    }
    if stdout {
        expected.push("stdout");
    }
    if stderr && !tty {
        expected.push("stderr");
    }
    if tty && version >= 3 {
        expected.push("resize");
    }
    let (session, mut incoming) = Session::start(io, Role::Server);
    let mut streams: HashMap<String, Stream> = HashMap::new();
    let collect = async {
        while !expected.iter().all(|k| streams.contains_key(*k)) {
            let s = incoming.recv().await?;
            let kind = s.header("streamtype").unwrap_or_default().to_string();
            if expected.contains(&kind.as_str()) && !streams.contains_key(&kind) {
                streams.insert(kind, s);
            } else {
                s.writer.reset().await;
            }
        }
        Some(())
    };
    match tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect).await {
        Ok(Some(())) => {}
        _ => {
            tracing::debug!("streaming client did not open the expected streams");
            session.close().await;
            return;
        }
    }
    let error = streams.remove("error").expect("collected");
    let mut outputs = Vec::new();
    let mut chans = StdioChannels::default();
    if let Some(s) = streams.remove("stdin") {
        chans.stdin = Some(input_from(s.reader));
    }
    if let Some(s) = streams.remove("stdout") {
        let (tx, h) = output_to(s.writer);
        chans.stdout = Some(tx);
        outputs.push(h);
    }
    if let Some(s) = streams.remove("stderr") {
        let (tx, h) = output_to(s.writer);
        chans.stderr = Some(tx);
        outputs.push(h);
    }
    if let Some(s) = streams.remove("resize") {
        chans.resize = Some(resize_from(s.reader));
    }
    let outcome = tokio::select! {
        o = request.run(&backend, chans) => o,
        _ = session.closed() => return,
    };
    for h in outputs {
        let _ = h.await;
    }
    if let Some(p) = outcome.error_payload(version >= 4) {
        let _ = error.writer.write(&p).await;
    }
    let _ = error.writer.close().await;
    session.close().await;
}
