//! gRPC channels over a unix socket: the one connector used to reach
//! containerd, crid's own socket (cridctl, the benchmark, tests) and any CRI
//! endpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Error, Uri};

/// The socket path of `unix:///path` or a bare path.
pub fn socket_path(endpoint: &str) -> PathBuf {
    PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint))
}

fn endpoint() -> Endpoint {
    Endpoint::from_static("http://[::]").connect_timeout(Duration::from_secs(2))
}

fn connector(
    path: &Path,
) -> impl tower::Service<
    Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let path = path.to_path_buf();
    tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move {
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))
        }
    })
}

/// Connect now; fails when nobody listens on `path`.
pub async fn connect(path: &Path) -> Result<Channel, Error> {
    endpoint().connect_with_connector(connector(path)).await
}

/// Connect on first use and reconnect after the server restarts.
pub fn connect_lazy(path: &Path) -> Channel {
    endpoint().connect_with_connector_lazy(connector(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_socket_paths() {
        assert_eq!(
            socket_path("unix:///run/crid/crid.sock"),
            PathBuf::from("/run/crid/crid.sock")
        );
        assert_eq!(socket_path("/run/x.sock"), PathBuf::from("/run/x.sock"));
    }

    #[tokio::test]
    async fn connect_fails_when_nobody_listens() {
        let dir = tempfile::tempdir().unwrap();
        assert!(connect(&dir.path().join("none.sock")).await.is_err());
    }
}
