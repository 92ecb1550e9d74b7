//! Streaming: exec/attach/port-forward URLs served over SPDY/3.1 (driven by
//! kube-remotecommand's SPDY client) and WebSocket, and ExecSync, against a real
//! containerd running a busybox container started with `ctr`.

mod support;

use crid::config::Config;
use crid::containerd::Containerd;
use crid::stream::{AttachParams, ExecParams, NetnsLookup, StreamService};
use std::path::PathBuf;
use std::sync::Arc;
use support::spdy::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    ctd: TestContainerd,
    state: tempfile::TempDir,
    svc: StreamService,
    id: String,
    _shim_bin: Option<tempfile::TempDir>,
}

impl Fixture {
    async fn start(netns: Option<PathBuf>) -> Fixture {
        Self::start_on(netns, None).await
    }

    /// The container on containerd's runtime `runtime` (None: the default).
    /// crid's own shim is found on the test containerd's PATH.
    async fn start_on(netns: Option<PathBuf>, runtime: Option<&str>) -> Fixture {
        let shim_bin = runtime.map(|_| crid_shim_bin_dir());
        let ctd = match &shim_bin {
            Some(dir) => TestContainerd::start_with_path_first(dir.path()),
            None => TestContainerd::start(),
        };
        let img_dir = short_tempdir("img");
        let img = image::busybox_image(
            &img_dir.path().join("layout"),
            "latest",
            &Default::default(),
        );
        image::ctr_import(&ctd, &img, "docker.io/library/busybox:stream");
        // Unique: runc's state dir is shared by every containerd on the machine.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("crid-stream-{}-{n}", std::process::id());
        let mut run = vec!["run", "-d"];
        if let Some(r) = runtime {
            run.extend(["--runtime", r]);
        }
        run.extend(["docker.io/library/busybox:stream", &id, "sleep", "1000"]);
        ctd.ctr(&run);
        let state = short_tempdir("st");
        let config = Config {
            state: state.path().to_path_buf(),
            ..Config::default()
        };
        let cd = Containerd::new(&ctd.address, "k8s.io", "overlayfs").unwrap();
        let lookup: NetnsLookup = Arc::new(move |_| netns.clone().map(Some));
        let svc = StreamService::new(cd, &config, lookup);
        svc.start("127.0.0.1:0").await.unwrap();
        Fixture {
            ctd,
            state,
            svc,
            id,
            _shim_bin: shim_bin,
        }
    }

    fn exec(&self, cmd: &[&str], tty: bool, stdin: bool) -> ExecParams {
        ExecParams {
            container_id: self.id.clone(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout: true,
            stderr: !tty,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ctr")
            .arg("--address")
            .arg(&self.ctd.address)
            .args(["-n", "k8s.io", "tasks", "kill", "-s", "9", &self.id])
            .output();
        std::thread::sleep(std::time::Duration::from_millis(300));
        for args in [
            vec!["tasks", "rm", "-f", &self.id],
            vec!["containers", "rm", &self.id],
        ] {
            let _ = std::process::Command::new("ctr")
                .arg("--address")
                .arg(&self.ctd.address)
                .args(["-n", "k8s.io"])
                .args(&args)
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_over_spdy_pipes_stdio_and_reports_exit_codes() {
    if missing_tools() {
        return;
    }
    exec_over_spdy_on(Fixture::start(None).await).await;
}

/// The same on crid's own shim (io.containerd.crid.v1).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_over_spdy_on_crids_shim() {
    if missing_tools() {
        return;
    }
    exec_over_spdy_on(Fixture::start_on(None, Some(CRID_RUNTIME)).await).await;
}

const CRID_RUNTIME: &str = "io.containerd.crid.v1";

async fn exec_over_spdy_on(f: Fixture) {
    let url = f
        .svc
        .exec_url(f.exec(&["sh", "-c", "echo out; echo err >&2"], false, false))
        .await
        .unwrap();
    let r = spdy_exec(&url, None).await;
    assert_eq!(r.stdout, b"out\n");
    assert_eq!(r.stderr, b"err\n");
    assert_eq!(r.error, r#"{"metadata":{},"status":"Success"}"#);

    // stdin piped through `cat`, larger than one flow-control window.
    let data: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let url = f.svc.exec_url(f.exec(&["cat"], false, true)).await.unwrap();
    let r = spdy_exec(&url, Some(&data)).await;
    assert!(
        r.stdout == data,
        "echoed {} of {} bytes",
        r.stdout.len(),
        data.len()
    );
    assert!(r.error.contains("Success"), "{}", r.error);

    let url = f
        .svc
        .exec_url(f.exec(&["sh", "-c", "exit 7"], false, false))
        .await
        .unwrap();
    let r = spdy_exec(&url, None).await;
    let status: serde_json::Value = serde_json::from_str(&r.error).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "7");

    // A background child holding stdout open does not hang the exec.
    let url = f
        .svc
        .exec_url(f.exec(&["sh", "-c", "sleep 100 & echo started"], false, false))
        .await
        .unwrap();
    let r = spdy_exec(&url, None).await;
    assert_eq!(r.stdout, b"started\n");
    assert!(r.error.contains("Success"));

    // Tokens are single use; unknown ones are 404 too.
    let (code, _, _) = spdy(&url, &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 404);
    let bogus = format!("{}/exec/notatoken", url.rsplit_once("/exec/").unwrap().0);
    assert_eq!(spdy(&bogus, &["v4.channel.k8s.io"]).await.0, 404);
    // A token for exec is not valid on another route.
    let url = f
        .svc
        .exec_url(f.exec(&["true"], false, false))
        .await
        .unwrap();
    assert_eq!(spdy(&url.replace("/exec/", "/attach/"), &[]).await.0, 404);

    // Older protocol: only a message on failure.
    let url = f
        .svc
        .exec_url(f.exec(&["sh", "-c", "exit 3"], false, false))
        .await
        .unwrap();
    let (code, head, session) = spdy(&url, &["v2.channel.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    let session = session.unwrap();
    let error = session.open(h("error"), true).await.unwrap();
    let out = session.open(h("stdout"), true).await.unwrap();
    let err = session.open(h("stderr"), true).await.unwrap();
    let (_, _, e) = tokio::join!(
        read_all(out.reader),
        read_all(err.reader),
        read_all(error.reader)
    );
    let e = String::from_utf8(e).unwrap();
    assert!(e.contains("exit code 3") && !e.starts_with('{'), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tty_exec_follows_resize() {
    if missing_tools() {
        return;
    }
    tty_exec_follows_resize_on(Fixture::start(None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tty_exec_follows_resize_on_crids_shim() {
    if missing_tools() {
        return;
    }
    tty_exec_follows_resize_on(Fixture::start_on(None, Some(CRID_RUNTIME)).await).await;
}

async fn tty_exec_follows_resize_on(f: Fixture) {
    let url = f.svc.exec_url(f.exec(&["sh"], true, true)).await.unwrap();
    let (code, head, session) = spdy(&url, &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    let session = session.unwrap();
    let error = session.open(h("error"), true).await.unwrap();
    let stdin = session.open(h("stdin"), false).await.unwrap();
    let mut out = session.open(h("stdout"), true).await.unwrap();
    let resize = session.open(h("resize"), false).await.unwrap();
    resize
        .writer
        .write(br#"{"Width":100,"Height":40}"#)
        .await
        .unwrap();
    let mut seen = Vec::new();
    // Ask until the shell reports the new size (resize and stdin race).
    while !String::from_utf8_lossy(&seen).contains("40 100") {
        stdin.writer.write(b"stty size\n").await.unwrap();
        let b = out.reader.read().await.expect("tty output");
        seen.extend_from_slice(&b);
    }
    stdin.writer.write(b"exit 5\n").await.unwrap();
    let _ = read_all(out.reader).await;
    let e = String::from_utf8(read_all(error.reader).await).unwrap();
    assert!(e.contains("NonZeroExitCode") && e.contains("\"5\""), "{e}");
}

/// A command that reads its terminal size once, at start, sees the size the
/// client sent first (crictl exec -it … stty size), not 0x0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tty_exec_starts_with_the_clients_first_size() {
    if missing_tools() {
        return;
    }
    let f = Fixture::start(None).await;
    let url = f
        .svc
        .exec_url(f.exec(&["stty", "size"], true, false))
        .await
        .unwrap();
    let (code, head, session) = spdy(&url, &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    let session = session.unwrap();
    let error = session.open(h("error"), true).await.unwrap();
    let out = session.open(h("stdout"), true).await.unwrap();
    let resize = session.open(h("resize"), false).await.unwrap();
    resize
        .writer
        .write(br#"{"Width":120,"Height":33}"#)
        .await
        .unwrap();
    let seen = String::from_utf8_lossy(&read_all(out.reader).await).into_owned();
    let e = String::from_utf8(read_all(error.reader).await).unwrap();
    assert_eq!(seen.trim(), "33 120", "error stream: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_sync_returns_output_and_kills_at_timeout() {
    if missing_tools() {
        return;
    }
    let f = Fixture::start(None).await;
    let cmd = |c: &str| vec!["sh".to_string(), "-c".into(), c.into()];
    let out = f
        .svc
        .exec_sync(&f.id, cmd("echo hi; echo oops >&2; exit 4"), None)
        .await
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(out.stderr, b"oops\n");
    assert_eq!(out.exit_code, 4);

    let err = f
        .svc
        .exec_sync(
            &f.id,
            cmd("touch /tmp/started; sleep 1000"),
            Some(std::time::Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, crid::error::Error::DeadlineExceeded(_)),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    // The sleeper is gone: only the container's own sleep remains.
    let ps = f
        .svc
        .exec_sync(&f.id, cmd("ps -o args | grep -c '^sleep 1000'"), None)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "1");
    // FIFOs and exec dirs are cleaned up.
    let left: Vec<_> = std::fs::read_dir(f.state.path().join("exec"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_in_a_stopped_container_is_a_clear_error() {
    if missing_tools() {
        return;
    }
    let f = Fixture::start(None).await;
    f.ctd.ctr(&["tasks", "kill", "-s", "9", &f.id]);
    // Wait for the task to be stopped (no time limit: the kill always lands).
    loop {
        let out = f.ctd.ctr(&["tasks", "ls"]);
        if out
            .lines()
            .any(|l| l.contains(&f.id) && l.contains("STOPPED"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let err = f
        .svc
        .exec_url(f.exec(&["true"], false, false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("not running"), "{err}");
    let err = f
        .svc
        .exec_url(ExecParams {
            container_id: "no-such".into(),
            ..f.exec(&["true"], false, false)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_over_websocket_channels() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    if missing_tools() {
        return;
    }
    let f = Fixture::start(None).await;
    // v4 has no stdin-close signal: the command reads exactly what is sent.
    // v5 (what client-go's WebSocket executor and crictl offer) closes stdin
    // with a message on channel 255 naming stream 0, and `cat` sees EOF.
    for (proto, b64, script) in [
        ("v4.channel.k8s.io", false, "head -c 9; echo e >&2; exit 7"),
        (
            "v4.base64.channel.k8s.io",
            true,
            "head -c 9; echo e >&2; exit 7",
        ),
        ("v5.channel.k8s.io", false, "cat; echo e >&2; exit 7"),
    ] {
        let url = f
            .svc
            .exec_url(f.exec(&["sh", "-c", script], false, true))
            .await
            .unwrap();
        let mut req = url
            .replace("http://", "ws://")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", proto.parse().unwrap());
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], proto);
        let send = |ch: u8, data: &[u8]| {
            if b64 {
                use base64::Engine;
                Message::Text(
                    format!(
                        "{ch}{}",
                        base64::engine::general_purpose::STANDARD.encode(data)
                    )
                    .into(),
                )
            } else {
                let mut v = vec![ch];
                v.extend_from_slice(data);
                Message::Binary(v.into())
            }
        };
        ws.send(send(0, b"hello ws\n")).await.unwrap();
        if proto.starts_with("v5") {
            ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
        }
        let mut chans: [Vec<u8>; 4] = Default::default();
        let read_all = async {
            while let Some(Ok(m)) = ws.next().await {
                let (ch, data) = match m {
                    Message::Binary(b) if !b.is_empty() => (b[0], b[1..].to_vec()),
                    Message::Text(t) if !t.is_empty() => {
                        use base64::Engine;
                        let t = t.as_str();
                        (
                            t.as_bytes()[0] - b'0',
                            base64::engine::general_purpose::STANDARD
                                .decode(&t[1..])
                                .unwrap(),
                        )
                    }
                    _ => continue,
                };
                chans[ch as usize].extend_from_slice(&data);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read_all)
            .await
            .unwrap_or_else(|_| panic!("{proto}: the exec did not end"));
        assert_eq!(chans[1], b"hello ws\n", "{proto}");
        assert_eq!(chans[2], b"e\n", "{proto}");
        let status: serde_json::Value = serde_json::from_slice(&chans[3]).unwrap();
        assert_eq!(status["details"]["causes"][0]["message"], "7");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attach_streams_logger_output() {
    if missing_tools() {
        return;
    }
    let f = Fixture::start(None).await;
    let dir = crid::container::store::state_dir(f.state.path(), &f.id);
    std::fs::create_dir_all(&dir).unwrap();
    let l = tokio::net::UnixListener::bind(dir.join("logger.sock")).unwrap();
    tokio::spawn(async move {
        let (mut c, _) = l.accept().await.unwrap();
        let mut line = [0u8; 7];
        c.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"attach\n");
        c.write_all(b"ok\n").await.unwrap();
        for (id, msg) in [
            (1u8, &b"to stdout\n"[..]),
            (2, b"to stderr\n"),
            (1, b"more\n"),
        ] {
            c.write_all(&[id]).await.unwrap();
            c.write_all(&(msg.len() as u32).to_be_bytes())
                .await
                .unwrap();
            c.write_all(msg).await.unwrap();
        }
    });
    let url = f
        .svc
        .attach_url(AttachParams {
            container_id: f.id.clone(),
            stdin_once: false,
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap();
    assert!(url.contains("/attach/"));
    let r = spdy_exec(&url, None).await;
    assert_eq!(r.stdout, b"to stdout\nmore\n");
    assert_eq!(r.stderr, b"to stderr\n");
    assert!(r.error.contains("Success"), "{}", r.error);
}

struct TestNetns(String);

impl TestNetns {
    fn create() -> TestNetns {
        let name = format!("crid-pf-{}", std::process::id());
        let run = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        run(&["netns", "add", &name]);
        run(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        TestNetns(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// An echo server on 127.0.0.1:`port` inside `netns` (a dedicated thread enters it).
fn echo_server_in(netns: PathBuf, port: u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        let f = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        tx.send(()).unwrap();
        for c in l.incoming() {
            let mut c = c.unwrap();
            std::thread::spawn(move || {
                let mut r = c.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    rx.recv().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn port_forward_over_spdy_into_the_pod_netns() {
    const PF_CONNECTIONS: u32 = 20;
    if missing_tools() {
        return;
    }
    let ns = TestNetns::create();
    echo_server_in(ns.path(), 8080);
    let f = Fixture::start(Some(ns.path())).await;
    let url = f.svc.port_forward_url("sandbox", vec![8080]).await.unwrap();
    let (code, head, session) = spdy(&url, &["portforward.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    assert!(head.contains("portforward.k8s.io"));
    let session = session.unwrap();
    let mut tasks = Vec::new();
    for i in 0..PF_CONNECTIONS {
        let session = session.clone();
        tasks.push(tokio::spawn(async move {
            let hdr = |kind: &str| {
                vec![
                    ("streamtype".to_string(), kind.to_string()),
                    ("port".into(), "8080".into()),
                    ("requestid".into(), i.to_string()),
                ]
            };
            let error = session.open(hdr("error"), true).await.unwrap();
            let data = session.open(hdr("data"), false).await.unwrap();
            let payload: Vec<u8> = (0..1 << 20)
                .map(|j: u32| (j.wrapping_mul(31) ^ i) as u8)
                .collect();
            let w = data.writer.clone();
            let p2 = payload.clone();
            let writer = tokio::spawn(async move {
                w.write(&p2).await.unwrap();
                w.close().await.unwrap();
            });
            let echoed = read_all(data.reader).await;
            writer.await.unwrap();
            let err = read_all(error.reader).await;
            assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
            assert!(
                echoed == payload,
                "connection {i}: {} bytes back",
                echoed.len()
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A port nobody listens on: the error stream says so.
    let hdr = |kind: &str| {
        vec![
            ("streamtype".to_string(), kind.to_string()),
            ("port".into(), "9".into()),
            ("requestid".into(), "99".into()),
        ]
    };
    let error = session.open(hdr("error"), true).await.unwrap();
    let _data = session.open(hdr("data"), false).await.unwrap();
    let err = String::from_utf8(read_all(error.reader).await).unwrap();
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

/// The server's SPDY bytes, checked by hand rather than by the SPDY code the
/// other tests share with it: SETTINGS first, a SYN_REPLY per stream the
/// client opened, the output in DATA frames of the stdout stream and the v4
/// `Status` on the error stream, each ended with FIN, then GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_over_spdy_is_right_on_the_wire() {
    if missing_tools() {
        return;
    }
    let f = Fixture::start(None).await;
    let mut p = f.exec(&["echo", "on the wire"], false, false);
    p.stderr = false;
    let url = f.svc.exec_url(p).await.unwrap();
    let frames = raw_spdy_exec(&url).await;
    const SETTINGS: Option<u16> = Some(4);
    const SYN_REPLY: Option<u16> = Some(2);
    const GOAWAY: Option<u16> = Some(7);
    assert_eq!(frames[0].kind, SETTINGS, "{frames:?}");
    assert_eq!(frames.last().unwrap().kind, GOAWAY, "{frames:?}");
    for id in [1, 3] {
        assert!(
            frames
                .iter()
                .any(|f| f.kind == SYN_REPLY && f.stream_id == id),
            "no SYN_REPLY for stream {id}: {frames:?}"
        );
    }
    let data = |id: u32| -> (Vec<u8>, bool) {
        let mine: Vec<&RawFrame> = frames
            .iter()
            .filter(|f| f.kind.is_none() && f.stream_id == id)
            .collect();
        let bytes = mine.iter().flat_map(|f| f.payload.clone()).collect();
        (bytes, mine.last().is_some_and(|f| f.flags & 0x01 != 0))
    };
    assert_eq!(data(3), (b"on the wire\n".to_vec(), true), "{frames:?}");
    assert_eq!(
        data(1),
        (br#"{"metadata":{},"status":"Success"}"#.to_vec(), true),
        "{frames:?}"
    );
}
