//! The runtime side of kubelet's streaming protocols: what a CRI runtime
//! serves at the URLs its `Exec`, `Attach` and `PortForward` answers carry.
//!
//! - [`spdy`]: SPDY/3.1 frames, header compression and sessions with flow
//!   control, both roles (kubelet and kubectl speak it to the runtime).
//! - [`protocol`]: the subprotocol versions (`v1`–`v4.channel.k8s.io`,
//!   `v5` over WebSocket, `portforward.k8s.io`), their negotiation, the
//!   `Status` written on the error stream and terminal-resize messages.
//! - the sessions: remotecommand over SPDY (streams named by `streamtype`),
//!   the WebSocket channel protocols (one channel per message, base64 or
//!   binary, v5's close), port-forward over SPDY (a data and an error stream
//!   per connection), over WebSocket, and SPDY tunnelled in WebSocket;
//! - [`StreamServer`]: the server of the streaming URLs (HTTP/1.1 on
//!   hyper) — single-use tokens (kubelet's rules: one minute, at most 1000),
//!   the upgrade handshake and the dispatch to the sessions above.
//!
//! A runtime plugs in through [`Backend`]: given what a URL was issued for
//! ([`Request`]) and the client's streams as channels ([`StdioChannels`]), it
//! runs the exec, the attach or the connection to a pod's port. Nothing
//! here knows about containers, containerd or the CRI bindings.
//!
//! Dependencies run one way: `server` → the sessions → `protocol`, `spdy`,
//! `backend`.

mod backend;
mod portforward;
pub mod protocol;
mod remotecommand;
mod server;
pub mod spdy;
mod tokens;
mod websocket;

pub use backend::{Backend, Request, Streams};
pub use protocol::StdioChannels;
pub use server::StreamServer;
pub use tokens::{MAX_TOKENS, TOKEN_TTL};

/// What the streaming server itself can fail at (a backend's failures go to
/// the client on the session's error stream).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bind streaming server on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("streaming server not started")]
    NotStarted,
    #[error("too many outstanding streaming requests (max {max})")]
    TooManyRequests { max: usize },
}
