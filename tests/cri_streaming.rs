//! Exec, ExecSync, Attach and PortForward through crid's CRI API on real
//! pods: the URLs crid returns, driven by a kubectl-like SPDY client.

mod support;

use crid::cri::*;
use kube_remotecommand::spdy::Session;
use support::pod::{attach_url, in_own_pid_namespace, PodEnv};
use support::spdy::*;
use support::*;

async fn running(env: &PodEnv, name: &str, cmd: &[&str]) -> (String, String, PodSandboxConfig) {
    let pod = env.pod_config(name);
    let sid = env.run_pod(&pod).await;
    let cid = env.run(&sid, &pod, env.container_config("main", cmd)).await;
    (sid, cid, pod)
}

/// A SPDY port-forward session to `port` of the pod.
async fn port_forward_session(env: &PodEnv, sid: &str, port: u16) -> Session {
    let (code, head, session) = spdy(
        &port_forward_url(env, sid, port).await,
        &["portforward.k8s.io"],
    )
    .await;
    assert_eq!(code, 101, "{head}");
    session.unwrap()
}

async fn port_forward_url(env: &PodEnv, sid: &str, port: u16) -> String {
    env.rt()
        .await
        .port_forward(PortForwardRequest {
            pod_sandbox_id: sid.to_string(),
            port: vec![port as i32],
        })
        .await
        .unwrap()
        .into_inner()
        .url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_stdin_and_reports_exit_codes() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let (sid, cid, _) = running(&env, "exec", &["sleep", "3600"]).await;
    let mut rt = env.rt().await;
    let url = rt
        .exec(ExecRequest {
            container_id: cid.clone(),
            cmd: vec!["cat".into()],
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let r = spdy_exec(&url, Some(b"echo me back\n")).await;
    assert_eq!(r.stdout, b"echo me back\n");
    assert!(r.error.contains("Success"), "{}", r.error);

    let url = rt
        .exec(ExecRequest {
            container_id: cid.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo oops >&2; exit 7".into()],
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let r = spdy_exec(&url, None).await;
    assert_eq!(r.stderr, b"oops\n");
    assert!(
        r.error.contains("NonZeroExitCode") && r.error.contains("\"7\""),
        "{}",
        r.error
    );
    // A URL is single-use.
    let (code, _, _) = spdy(&url, &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 404);
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_sync_returns_output_and_honours_the_timeout() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let (sid, cid, _) = running(&env, "execsync", &["sleep", "3600"]).await;
    let mut rt = env.rt().await;
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: cid.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 4".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 4)
    );
    let err = rt
        .exec_sync(ExecSyncRequest {
            container_id: cid.clone(),
            cmd: vec!["sleep".into(), "60".into()],
            timeout: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    // The timed-out process is gone.
    let ps = rt
        .exec_sync(ExecSyncRequest {
            container_id: cid.clone(),
            cmd: vec!["ps".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 60"));
    env.stop_and_remove_pod(&sid).await;
    // Exec in a container that no longer runs: a clear error.
    let err = rt
        .exec_sync(ExecSyncRequest {
            container_id: cid,
            cmd: vec!["true".into()],
            timeout: 10,
        })
        .await
        .unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok);
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_receives_the_containers_output_while_the_log_keeps_it() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let (sid, cid, pod) = running(
        &env,
        "attach",
        &[
            "sh",
            "-c",
            "sleep 1; i=0; while [ $i -lt 5 ]; do echo tick-$i; i=$((i+1)); sleep 0.2; done",
        ],
    )
    .await;
    let url = attach_url(&mut env.rt().await, &cid, false).await;
    let r = spdy_exec(&url, None).await;
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("tick-4"), "{out}");
    let log = std::path::Path::new(&pod.log_directory).join("main/0.log");
    env.wait_for_file(&log, "tick-4").await;
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reaches_a_server_inside_the_pod() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    // A pod as kubelet sends most: crid runs it without a pause container,
    // and the forward enters the network namespace crid pinned.
    let pod = env.pod_config_without_shared_pid("pf");
    let sid = env.run_pod(&pod).await;
    let server = env.container_config(
        "main",
        &["sh", "-c", "mkdir -p /tmp/w && echo forwarded > /tmp/w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/w"],
    );
    env.run(&sid, &pod, in_own_pid_namespace(server)).await;
    assert_eq!(
        env.containerd_objects().1,
        1,
        "the server's task, no pause task"
    );
    let session = port_forward_session(&env, &sid, 8080).await;
    let answer = forwarded_http_get(&session, 8080, "forwarded").await;
    assert!(answer.contains("forwarded"), "{answer}");
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// A container with `stdin` and `stdin_once` and no terminal (`kubectl run
/// -i`): its shell waits on stdin (containerd 1.6's shim gives no stdin to a
/// process whose output goes to a log binary, so crid uses FIFOs and starts
/// the logger itself), reads what the first attach sends, and gets EOF when
/// that attach's stdin ends. Output reaches the attach and the CRI log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_feeds_stdin_once_to_a_container_without_a_terminal() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("stdin");
    let sid = env.run_pod(&pod).await;
    let mut cfg = env.container_config("main", &["sh"]);
    cfg.stdin = true;
    cfg.stdin_once = true;
    let cid = env.run(&sid, &pod, cfg).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        env.status(&cid).await.state,
        ContainerState::ContainerRunning as i32,
        "the shell waits on its stdin"
    );
    let url = attach_url(&mut env.rt().await, &cid, true).await;
    let r = spdy_exec(&url, Some(b"echo said-$((6*7)); echo to-stderr >&2\n")).await;
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("said-42"), "{out} / error stream: {}", r.error);
    let status = env.wait_exited(&cid).await;
    assert_eq!(status.exit_code, 0, "EOF on stdin ends the shell");
    let log = std::path::Path::new(&pod.log_directory).join("main/0.log");
    let text = env.wait_for_file(&log, "to-stderr").await;
    assert!(text.contains(" stdout F said-42"), "{text}");
    assert!(text.contains(" stderr F to-stderr"), "{text}");
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// Port-forward into a host-network pod reaches the node's loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_of_a_host_network_pod_reaches_the_node_over_spdy_and_websocket() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.host_network_pod_config("pf-host");
    let sid = env.run_pod(&pod).await;
    // Over SPDY (kubelet, crictl's default), then SPDY tunnelled in WebSocket
    // messages (crictl --transport websocket).
    for tunnelled in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"from-the-node").unwrap();
        });
        let session = if tunnelled {
            let url = port_forward_url(&env, &sid, port).await;
            let (proto, session) = spdy_over_websocket(&url, "portforward.k8s.io").await;
            assert_eq!(proto, "SPDY/3.1+portforward.k8s.io");
            session
        } else {
            port_forward_session(&env, &sid, port).await
        };
        let error = session
            .open(forward_headers("error", port, 0), true)
            .await
            .unwrap();
        let data = session
            .open(forward_headers("data", port, 0), false)
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&read_all(data.reader).await).into_owned();
        let err = String::from_utf8_lossy(&read_all(error.reader).await).into_owned();
        assert_eq!(
            answer, "from-the-node",
            "tunnelled {tunnelled}; error stream: {err}"
        );
        server.join().unwrap();
    }
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}
