//! Kubernetes streaming protocols shared by the transports: the protocol
//! versions we speak, the channel bundle an exec/attach runs against, the
//! `Status` object written on the error stream, and resize messages.

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

/// remotecommand subprotocols over SPDY, most preferred first.
pub const SPDY_REMOTECOMMAND: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
pub const PORT_FORWARD: &str = "portforward.k8s.io";
/// WebSocket subprotocols for exec/attach. v5 (client-go's WebSocket
/// executor, `crictl --transport websocket`, offers nothing else) is v4 plus
/// a CLOSE message: channel 255 with the id of the stream the client closed.
pub const WS_REMOTECOMMAND: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// Pick the first protocol of the client's list that we support; a client
/// that names none gets `fallback`.
pub fn negotiate<'a>(client: &[String], ours: &[&'a str], fallback: &'a str) -> Option<&'a str> {
    let offered: Vec<&str> = client
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if offered.is_empty() {
        return Some(fallback);
    }
    offered
        .iter()
        .find_map(|c| ours.iter().find(|o| *o == c).copied())
}

/// The channels an exec or attach runs against, whatever the transport.
#[derive(Default)]
pub struct StdioChannels {
    /// Client input; closed at EOF.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub stdout: Option<mpsc::Sender<Bytes>>,
    pub stderr: Option<mpsc::Sender<Bytes>>,
    /// Terminal size changes (width, height).
    pub resize: Option<mpsc::Receiver<(u32, u32)>>,
}

/// How an exec or attach ended.
#[derive(Debug)]
pub enum Outcome {
    Exited(i32),
    Failed(String),
}

impl Outcome {
    /// The error-stream payload: `Status` JSON for v4, a bare message before.
    pub fn error_payload(&self, v4: bool) -> Option<Vec<u8>> {
        let msg = match self {
            Outcome::Exited(0) => None,
            Outcome::Exited(code) => Some(format!(
                "command terminated with non-zero exit code: error executing command, exit code {code}"
            )),
            Outcome::Failed(m) => Some(m.clone()),
        };
        if !v4 {
            return msg.map(String::into_bytes);
        }
        let status = match self {
            Outcome::Exited(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
            Outcome::Exited(code) => serde_json::json!({
                "metadata": {},
                "status": "Failure",
                "message": msg.unwrap_or_default(),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Outcome::Failed(m) => serde_json::json!({
                "metadata": {},
                "status": "Failure",
                "message": m,
                "reason": "InternalError",
            }),
        };
        Some(serde_json::to_vec(&status).expect("status serialises"))
    }
}

#[derive(Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width")]
    width: u32,
    #[serde(rename = "Height")]
    height: u32,
}

/// Accumulates resize-stream bytes and yields complete `{"Width","Height"}` objects.
#[derive(Default)]
pub struct ResizeDecoder {
    buf: Vec<u8>,
}

impl ResizeDecoder {
    pub fn push(&mut self, data: &[u8]) -> Vec<(u32, u32)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<TerminalSize>();
        let mut consumed = 0;
        loop {
            match it.next() {
                Some(Ok(s)) => {
                    consumed = it.byte_offset();
                    out.push((s.width, s.height));
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => {
                    // Garbage: drop what we have.
                    consumed = self.buf.len();
                    break;
                }
                None => {
                    consumed = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > 4096 {
            self.buf.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_status_for_exit_codes() {
        assert_eq!(
            Outcome::Exited(0).error_payload(true).unwrap(),
            br#"{"metadata":{},"status":"Success"}"#
        );
        let v: serde_json::Value =
            serde_json::from_slice(&Outcome::Exited(7).error_payload(true).unwrap()).unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "7");
        assert!(Outcome::Exited(0).error_payload(false).is_none());
        assert!(Outcome::Exited(7).error_payload(false).is_some());
    }

    #[test]
    fn negotiation_follows_the_clients_order() {
        let c = vec!["v3.channel.k8s.io".to_string(), "v4.channel.k8s.io".into()];
        assert_eq!(
            negotiate(&c, SPDY_REMOTECOMMAND, "channel.k8s.io"),
            Some("v3.channel.k8s.io")
        );
        assert_eq!(
            negotiate(&["x, v4.channel.k8s.io".into()], SPDY_REMOTECOMMAND, ""),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(negotiate(&["v9".into()], SPDY_REMOTECOMMAND, ""), None);
        assert_eq!(
            negotiate(&[], SPDY_REMOTECOMMAND, "channel.k8s.io"),
            Some("channel.k8s.io")
        );
    }

    #[test]
    fn resize_messages_split_across_chunks() {
        let mut d = ResizeDecoder::default();
        assert!(d.push(br#"{"Width":80,"Hei"#).is_empty());
        assert_eq!(
            d.push(b"ght\":24}\n{\"Width\":100,\"Height\":30}"),
            vec![(80, 24), (100, 30)]
        );
    }
}
