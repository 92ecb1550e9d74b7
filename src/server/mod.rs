//! The gRPC edge: serves CRI `RuntimeService` and `ImageService` on a unix
//! socket. Handlers only translate; errors become `tonic::Status` here, once.

mod authority;
mod convert;
mod deadline;
mod events;
mod image;
mod list_stream;
mod metrics;
mod runtime;
mod stats;
mod streaming;

pub use image::ImageServer;
pub use runtime::RuntimeServer;

use crate::runtime::Runtime;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bind the CRI socket: create the parent dir, replace a stale socket only
/// when nobody answers on it, and set mode 0660.
pub fn bind_socket(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running server", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serve until `shutdown` resolves, then drain in-flight RPCs (the caller
/// bounds the wait).
///
/// Each connection goes through [`authority::AuthorityFront`] (any
/// `:authority` is served) into hyper's HTTP/2 server, and each request
/// through [`deadline::run`] (an expired `grpc-timeout` answers
/// DEADLINE_EXCEEDED) into tonic's routes.
pub async fn serve(
    runtime: Arc<Runtime>,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use crate::cri::image_service_server::ImageServiceServer;
    use crate::cri::runtime_service_server::RuntimeServiceServer;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;
    const MAX_MESSAGE: usize = 16 * 1024 * 1024;
    let routes = tonic::service::Routes::new(
        RuntimeServiceServer::new(RuntimeServer::new(runtime.clone()))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    )
    .add_service(
        ImageServiceServer::new(ImageServer::new(runtime))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    );
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // As tonic's server: no limit on concurrent streams.
    http2.timer(TokioTimer::new()).max_concurrent_streams(None);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("CRI socket accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let routes = routes.clone();
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let routes = routes.clone();
                let method = req.uri().path().to_owned();
                let span = tracing::debug_span!("rpc", method = %method);
                let deadline = deadline::of_request(&req);
                tracing::Instrument::instrument(
                    async move {
                        let call = async {
                            match routes.oneshot(req).await {
                                Ok(resp) => resp,
                                Err(never) => match never {},
                            }
                        };
                        Ok::<_, std::convert::Infallible>(
                            deadline::run(deadline, &method, call).await,
                        )
                    },
                    span,
                )
            });
        let io = TokioIo::new(authority::AuthorityFront::new(stream));
        let conn = graceful.watch(http2.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("CRI connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Run one RPC body: log it at debug with its duration, errors at warn, and
/// map crid's error to a gRPC status.
pub(crate) async fn handle<T>(
    method: &'static str,
    fut: impl std::future::Future<Output = crate::Result<T>>,
) -> Result<tonic::Response<T>, tonic::Status> {
    let start = Instant::now();
    let result = fut.await;
    let elapsed: Duration = start.elapsed();
    let code = result
        .as_ref()
        .map_or_else(|e| e.code(), |_| tonic::Code::Ok);
    crate::metrics::global().observe_rpc(method, code, elapsed);
    match result {
        Ok(v) => {
            tracing::debug!(method, elapsed_us = elapsed.as_micros() as u64, "rpc ok");
            Ok(tonic::Response::new(v))
        }
        Err(e) => {
            let status = tonic::Status::from(e);
            tracing::warn!(method, elapsed_us = elapsed.as_micros() as u64, code = ?status.code(), error = %status.message(), "rpc failed");
            Err(status)
        }
    }
}

/// Run a create in its own task, so it finishes (or rolls itself back) even
/// when the RPC is dropped: tonic drops a handler whose client deadline
/// (`grpc-timeout`) passed or whose client went away. A retry then finds the
/// name reserved and gets AlreadyExists naming the id.
pub(crate) async fn detached<T: Send + 'static>(
    fut: impl std::future::Future<Output = crate::Result<T>> + Send + 'static,
) -> crate::Result<T> {
    tokio::spawn(fut)
        .await
        .map_err(|e| crate::Error::internal(format!("operation task failed: {e}")))?
}
