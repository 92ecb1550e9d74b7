//! What real gRPC clients send on crid's socket: any `:authority` (grpc-go
//! of kubelet ≤ 1.26 and grpc-java send the socket path, grpc's C core the
//! percent-encoded path, crictl `localhost`), and deadlines (`grpc-timeout`)
//! that expire. Requests are written frame by frame over crid's real socket,
//! since the h2 client crate sends only valid authorities. The streaming
//! server gets odd `Host` headers on its HTTP/1.1 upgrades.

mod support;

use crid::cri::*;
use std::time::Duration;
use support::h2raw::{Authority, RawH2};
use support::pod::PodEnv;
use support::spdy::upgrade_with_host;
use support::*;

const VERSION: &str = "/runtime.v1.RuntimeService/Version";
const CONTAINER_STATUS: &str = "/runtime.v1.RuntimeService/ContainerStatus";
const LIST_IMAGES: &str = "/runtime.v1.ImageService/ListImages";
const PULL_IMAGE: &str = "/runtime.v1.ImageService/PullImage";
const EXEC: &str = "/runtime.v1.RuntimeService/Exec";

/// Every way clients name the authority of a unix-socket request.
fn authorities(socket: &str) -> Vec<(String, Authority<'static>)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let encoded = socket.replace('/', "%2F");
    vec![
        (
            "socket path".into(),
            Authority::Value(leak(socket.to_string())),
        ),
        (
            "percent-encoded path".into(),
            Authority::Value(leak(encoded)),
        ),
        (
            "unix URI".into(),
            Authority::Value(leak(format!("unix://{socket}"))),
        ),
        ("empty".into(), Authority::Value("")),
        ("missing".into(), Authority::Missing),
        ("localhost".into(), Authority::Value("localhost")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authority_is_answered_as_localhost_is() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let socket = crid.socket.to_string_lossy().into_owned();
    let mut h2 = RawH2::connect(&crid.socket).await;
    // Twice over one connection: the second round's header blocks refer to
    // the client's HPACK table entries the first round made.
    for round in 0..2 {
        for (what, authority) in authorities(&socket) {
            let a = h2
                .unary(authority, VERSION, &VersionRequest::default(), &[])
                .await;
            assert_eq!(a.reset, None, "{what}: stream reset ({a:?})");
            assert_eq!(a.grpc_status(), Some(0), "{what} (round {round}): {a:?}");
            let v: VersionResponse = a.message();
            assert_eq!(v.runtime_name, "crid", "{what}");

            let a = h2
                .unary(authority, LIST_IMAGES, &ListImagesRequest::default(), &[])
                .await;
            assert_eq!(a.grpc_status(), Some(0), "{what}: {a:?}");

            // An error answer reaches the client the same way.
            let req = ContainerStatusRequest {
                container_id: "no-such-container".into(),
                verbose: false,
            };
            let a = h2.unary(authority, CONTAINER_STATUS, &req, &[]).await;
            assert_eq!(
                a.grpc_status(),
                Some(tonic::Code::NotFound as i32),
                "{what}: {a:?}"
            );
        }
    }
    // A fresh connection whose first request names the socket path.
    let mut h2 = RawH2::connect(&crid.socket).await;
    let a = h2
        .unary(
            Authority::Value(&socket),
            VERSION,
            &VersionRequest::default(),
            &[],
        )
        .await;
    assert_eq!(a.grpc_status(), Some(0), "{a:?}");
}

/// A registry that accepts connections and never answers.
fn silent_registry() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_deadline_answers_deadline_exceeded() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let (_registry, addr) = silent_registry();
    let pull = PullImageRequest {
        image: Some(ImageSpec {
            image: format!("{addr}/stuck:latest"),
            ..Default::default()
        }),
        ..Default::default()
    };
    // As critest's "should timeout if requested" (1 ms), several times, from
    // a grpc-go-like client naming the socket path: the answer must never be
    // CANCELLED. (tonic's own client fires its timer itself, so it is not
    // used here.)
    let socket = crid.socket.to_string_lossy().into_owned();
    let mut h2 = RawH2::connect(&crid.socket).await;
    for timeout in ["1m", "1m", "1m", "1000u", "200m"] {
        let a = h2
            .unary(
                Authority::Value(&socket),
                PULL_IMAGE,
                &pull,
                &[("grpc-timeout", timeout)],
            )
            .await;
        assert_eq!(
            a.grpc_status(),
            Some(tonic::Code::DeadlineExceeded as i32),
            "{timeout}: {a:?}"
        );
    }
    // A deadline that does not pass changes nothing.
    let a = h2
        .unary(
            Authority::Value(&socket),
            VERSION,
            &VersionRequest::default(),
            &[("grpc-timeout", "10S")],
        )
        .await;
    assert_eq!(a.grpc_status(), Some(0), "{a:?}");
    // crid still serves, and the pull left no image behind.
    let listed = crid
        .images()
        .await
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed
        .images
        .iter()
        .all(|i| !i.repo_tags.iter().any(|t| t.contains("stuck"))));
}

/// An Exec through a grpc-go-like client naming the socket path; its URL.
async fn exec_url(h2: &mut RawH2, socket: &str, cid: &str, cmd: &[&str]) -> String {
    let req = ExecRequest {
        container_id: cid.to_string(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let a = h2.unary(Authority::Value(socket), EXEC, &req, &[]).await;
    assert_eq!(a.grpc_status(), Some(0), "{a:?}");
    a.message::<ExecResponse>().url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_exec_with_a_socket_path_authority_and_odd_host_headers() {
    use futures::StreamExt;
    use kube_remotecommand::spdy::{Role, Session};
    use tokio_tungstenite::tungstenite::{protocol::Role as WsRole, Message};
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("odd-host");
    let sid = env.run_pod(&pod).await;
    let cid = env
        .run(&sid, &pod, env.container_config("main", &["sleep", "3600"]))
        .await;
    let socket = env.crid.socket.to_string_lossy().into_owned();
    let mut h2 = RawH2::connect(&env.crid.socket).await;
    let hosts = [
        Some(socket.as_str()),
        Some(""),
        None,
        Some("%2Frun%2Fcrid%2Fcrid.sock"),
    ];
    for host in hosts {
        // SPDY, as kubelet's proxy and crictl speak it.
        let url = exec_url(&mut h2, &socket, &cid, &["echo", "spdy"]).await;
        let extra = "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n";
        let (code, head, s) = upgrade_with_host(&url, host, extra).await;
        assert_eq!(code, 101, "Host {host:?}: {head}");
        let (session, _) = Session::start(s, Role::Client);
        let error = session.open(spdy::h("error"), false).await.unwrap();
        error.writer.close().await.unwrap();
        let out = session.open(spdy::h("stdout"), true).await.unwrap();
        let err = session.open(spdy::h("stderr"), true).await.unwrap();
        let (stdout, _, error) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(
                spdy::read_all(out.reader),
                spdy::read_all(err.reader),
                spdy::read_all(error.reader)
            )
        })
        .await
        .expect("exec over SPDY ended");
        assert_eq!(stdout, b"spdy\n", "Host {host:?}");
        let status = String::from_utf8_lossy(&error);
        assert!(status.contains("Success"), "Host {host:?}: {status}");

        // WebSocket, as client-go's WebSocket executor speaks it.
        let url = exec_url(&mut h2, &socket, &cid, &["echo", "ws"]).await;
        let extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n";
        let (code, head, s) = upgrade_with_host(&url, host, extra).await;
        assert_eq!(code, 101, "Host {host:?}: {head}");
        let mut ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(s, WsRole::Client, None).await;
        let mut stdout = Vec::new();
        let read = async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Binary(b) = m {
                    if b.first() == Some(&1) {
                        stdout.extend_from_slice(&b[1..]);
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("exec over WebSocket ended");
        assert_eq!(stdout, b"ws\n", "Host {host:?}");
        let _ = ws.close(None).await;
    }
    env.stop_and_remove_pod(&sid).await;
}
