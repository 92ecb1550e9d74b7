//! Where a runtime plugs in: [`Backend`] runs the exec, attach or
//! port-forward connection a streaming URL was issued for, and [`Request`]
//! is what such a URL stands for.

use crate::protocol::{Outcome, StdioChannels};
use std::fmt::Display;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};

/// The runtime's side of a streaming session. The protocols call it once
/// the client's streams are up; everything transport-related (SPDY or
/// WebSocket, stream names, the exit status on the error stream) stays on
/// this side of the trait.
pub trait Backend: Send + Sync + 'static {
    /// What an exec URL was issued for, beyond its streams (e.g. the
    /// container and the command).
    type Exec: Send + Sync + 'static;
    /// What an attach URL was issued for, beyond its streams.
    type Attach: Send + Sync + 'static;
    /// What a port-forward URL was issued for (e.g. the pod's network).
    type PortForward: Send + Sync + 'static;
    /// A connection to a port of a pod.
    type Connection: AsyncRead + AsyncWrite + Send + 'static;
    /// Shown to the client as the failure's message.
    type Error: Display + Send;

    /// Run the command against `io` until it exits; returns its exit code.
    fn exec(
        &self,
        exec: &Self::Exec,
        tty: bool,
        io: StdioChannels,
    ) -> impl Future<Output = Result<i32, Self::Error>> + Send;

    /// Stream the container's output (and input) until its output ends.
    fn attach(
        &self,
        attach: &Self::Attach,
        tty: bool,
        io: StdioChannels,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Connect to `port` of the pod, once per forwarded connection.
    fn connect(
        &self,
        pod: &Self::PortForward,
        port: u16,
    ) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;
}

/// Which streams an exec or attach uses (from the CRI request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// With a terminal stderr is merged into stdout, and the client may
    /// send terminal sizes.
    pub tty: bool,
}

/// What a streaming URL stands for.
pub enum Request<B: Backend> {
    Exec(Streams, B::Exec),
    Attach(Streams, B::Attach),
    PortForward(B::PortForward),
}

impl<B: Backend> Request<B> {
    /// The URL's first path segment.
    pub(crate) fn route(&self) -> &'static str {
        match self {
            Request::Exec(..) => "exec",
            Request::Attach(..) => "attach",
            Request::PortForward(_) => "portforward",
        }
    }

    /// The streams of an exec or attach; None for a port-forward.
    pub(crate) fn streams(&self) -> Option<Streams> {
        match self {
            Request::Exec(s, _) | Request::Attach(s, _) => Some(*s),
            Request::PortForward(_) => None,
        }
    }
}

impl<B: Backend> Request<B> {
    /// Run an exec or attach through `backend` against `io`.
    pub(crate) async fn run(&self, backend: &B, io: StdioChannels) -> Outcome {
        let failed = |e: B::Error| Outcome::Failed(e.to_string());
        match self {
            Request::Exec(s, exec) => backend
                .exec(exec, s.tty, io)
                .await
                .map_or_else(failed, Outcome::Exited),
            Request::Attach(s, attach) => backend
                .attach(attach, s.tty, io)
                .await
                .map_or_else(failed, |()| Outcome::Exited(0)),
            Request::PortForward(_) => Outcome::Failed("not an exec or attach".into()),
        }
    }
}
