//! What kubelet polls or streams from crid, on a real node: container events
//! for every subscriber in order, the runtime's configuration and verbose
//! status, CRI metrics, the Prometheus endpoint, and stats that follow real
//! CPU, memory and network use.

mod support;

use crid::cri::*;
use std::io::{Read, Write};
use std::time::Duration;
use support::pod::{http_get, PodEnv};
use support::*;

type Events = tonic::Streaming<ContainerEventResponse>;

async fn subscribe(env: &PodEnv) -> Events {
    env.rt()
        .await
        .get_container_events(GetEventsRequest {})
        .await
        .expect("GetContainerEvents")
        .into_inner()
}

/// The events of container `id` until its DELETED event (bounded).
async fn events_of(stream: &mut Events, id: &str) -> Vec<ContainerEventResponse> {
    let mut out = vec![];
    for _ in 0..50 {
        let ev = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .expect("no container event within 60s")
            .expect("event stream failed")
            .expect("event stream ended");
        if ev.container_id != id {
            continue;
        }
        let done = ev.container_event_type == ContainerEventType::ContainerDeletedEvent as i32;
        out.push(ev);
        if done {
            return out;
        }
    }
    panic!("no DELETED event for {id}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_events_reach_every_subscriber_in_order() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut first = subscribe(&env).await;
    let mut second = subscribe(&env).await;
    let mut third = subscribe(&env).await;
    let pod = env.pod_config("events");
    let sid = env.run_pod(&pod).await;
    let cid = env
        .run(
            &sid,
            &pod,
            env.container_config("sleeper", &["sleep", "3600"]),
        )
        .await;
    let mut rt = env.rt().await;
    rt.stop_container(StopContainerRequest {
        container_id: cid.clone(),
        timeout: 0,
    })
    .await
    .expect("StopContainer");
    rt.remove_container(RemoveContainerRequest {
        container_id: cid.clone(),
    })
    .await
    .expect("RemoveContainer");

    let expected = vec![
        ContainerEventType::ContainerCreatedEvent as i32,
        ContainerEventType::ContainerStartedEvent as i32,
        ContainerEventType::ContainerStoppedEvent as i32,
        ContainerEventType::ContainerDeletedEvent as i32,
    ];
    for stream in [&mut first, &mut second] {
        let events = events_of(stream, &cid).await;
        let kinds: Vec<i32> = events.iter().map(|e| e.container_event_type).collect();
        assert_eq!(kinds, expected, "{events:?}");
        assert!(events
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at));
        let created = &events[0];
        assert_eq!(created.pod_sandbox_status.as_ref().unwrap().id, sid);
        let own = created
            .containers_statuses
            .iter()
            .find(|s| s.id == cid)
            .expect("the container's own status");
        assert_eq!(own.metadata.as_ref().unwrap().name, "sleeper");
        let stopped = &events[2];
        let own = stopped
            .containers_statuses
            .iter()
            .find(|s| s.id == cid)
            .expect("status at stop");
        assert_eq!(own.state, ContainerState::ContainerExited as i32);
        assert!(events[3].containers_statuses.iter().all(|s| s.id != cid));
    }
    env.stop_and_remove_pod(&sid).await;
    // The sandbox's own events carry its id as the container id, as
    // containerd's CRI sends them; the last has no sandbox status left.
    let events = events_of(&mut third, &sid).await;
    let kinds: Vec<i32> = events.iter().map(|e| e.container_event_type).collect();
    assert_eq!(kinds, expected, "{events:?}");
    let states: Vec<Option<i32>> = events
        .iter()
        .map(|e| e.pod_sandbox_status.as_ref().map(|s| s.state))
        .collect();
    assert_eq!(
        states,
        vec![
            Some(PodSandboxState::SandboxReady as i32),
            Some(PodSandboxState::SandboxReady as i32),
            Some(PodSandboxState::SandboxNotready as i32),
            None
        ]
    );
    env.assert_no_leaks();
}

/// GET /metrics on `addr` (bounded retries), the body.
fn scrape(addr: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match std::net::TcpStream::connect(addr) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                let (head, body) = out.split_once("\r\n\r\n").expect("HTTP response");
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                assert!(head.contains("text/plain; version=0.0.4"), "{head}");
                return body.to_string();
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("metrics endpoint {addr} not answering: {last}");
}

/// Prometheus text format → (series with labels, value); panics on a line
/// that is neither a comment nor a sample.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .filter(|l| {
            if let Some(c) = l.strip_prefix('#') {
                let kind = c.split_whitespace().next();
                assert!(matches!(kind, Some("HELP" | "TYPE")), "bad comment {l:?}");
                false
            } else {
                true
            }
        })
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            let name_end = series.find('{').unwrap_or(series.len());
            let name = &series[..name_end];
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {l:?}"
            );
            if name_end < series.len() {
                assert!(series.ends_with('}'), "bad labels in {l:?}");
            }
            let v = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            };
            (series.to_string(), v)
        })
        .collect()
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .unwrap_or_else(|| panic!("no series {series}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_config_status_metrics_and_prometheus_endpoint() {
    if missing_tools() {
        return;
    }
    let addr = format!("127.0.0.1:{}", support::image::free_port());
    let env = PodEnv::with_options(CridOptions {
        extra_args: vec!["--metrics-address".into(), addr.clone()],
        ..Default::default()
    })
    .await;
    let mut rt = env.rt().await;

    let config = rt
        .runtime_config(RuntimeConfigRequest {})
        .await
        .expect("RuntimeConfig")
        .into_inner();
    assert_eq!(
        config.linux.unwrap().cgroup_driver,
        CgroupDriver::Cgroupfs as i32
    );
    rt.update_runtime_config(UpdateRuntimeConfigRequest {
        runtime_config: Some(RuntimeConfig {
            network_config: Some(NetworkConfig {
                pod_cidr: "10.244.7.0/24".into(),
            }),
        }),
    })
    .await
    .expect("UpdateRuntimeConfig");
    let bad = rt
        .update_runtime_config(UpdateRuntimeConfigRequest {
            runtime_config: Some(RuntimeConfig {
                network_config: Some(NetworkConfig {
                    pod_cidr: "not-a-cidr".into(),
                }),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    let status = rt
        .status(StatusRequest { verbose: true })
        .await
        .expect("Status")
        .into_inner();
    for key in ["config", "cni", "containerd"] {
        let v = status.info.get(key).unwrap_or_else(|| panic!("no {key}"));
        serde_json::from_str::<serde_json::Value>(v).expect("info is JSON");
    }
    let cni: serde_json::Value = serde_json::from_str(&status.info["cni"]).unwrap();
    assert_eq!(cni["ready"], true, "{cni}");
    assert!(cni["configFile"]
        .as_str()
        .unwrap()
        .ends_with("10-test.conflist"));
    assert_eq!(cni["podCidr"], "10.244.7.0/24");
    let containerd: serde_json::Value = serde_json::from_str(&status.info["containerd"]).unwrap();
    assert!(
        containerd["version"].as_str().unwrap().starts_with('1'),
        "{containerd}"
    );

    rt.version(VersionRequest::default())
        .await
        .expect("Version");
    let pod = env.pod_config("metrics");
    let sid = env.run_pod(&pod).await;
    let cid = env
        .run(
            &sid,
            &pod,
            env.container_config("sleeper", &["sleep", "3600"]),
        )
        .await;

    let err = rt
        .checkpoint_container(CheckpointContainerRequest {
            container_id: cid.clone(),
            location: "/tmp/never-written.tar".into(),
            timeout: 10,
        })
        .await
        .unwrap_err();
    // Without CRIU: FailedPrecondition; with it: not implemented yet. Either
    // way the message says what is missing.
    let criu = which("criu").is_some();
    let (code, code_name) = if criu {
        (tonic::Code::Unimplemented, "UNIMPLEMENTED")
    } else {
        (tonic::Code::FailedPrecondition, "FAILED_PRECONDITION")
    };
    assert_eq!(err.code(), code, "{}", err.message());
    assert!(err.message().contains("CRIU"), "{}", err.message());

    let descriptors = rt
        .list_metric_descriptors(ListMetricDescriptorsRequest {})
        .await
        .expect("ListMetricDescriptors")
        .into_inner()
        .descriptors;
    let pods = rt
        .list_pod_sandbox_metrics(ListPodSandboxMetricsRequest {})
        .await
        .expect("ListPodSandboxMetrics")
        .into_inner()
        .pod_metrics;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].pod_sandbox_id, sid);
    let cm = &pods[0].container_metrics;
    assert_eq!(cm.len(), 1);
    assert_eq!(cm[0].container_id, cid);
    for m in cm[0].metrics.iter().chain(&pods[0].metrics) {
        let d = descriptors
            .iter()
            .find(|d| d.name == m.name)
            .expect("described");
        assert_eq!(d.label_keys.len(), m.label_values.len(), "{m:?}");
    }
    assert!(cm[0]
        .metrics
        .iter()
        .any(|m| m.name == "container_memory_working_set_bytes" && m.value.unwrap().value > 0));

    let samples = parse_prometheus(&scrape(&addr));
    for method in [
        "Version",
        "RunPodSandbox",
        "CreateContainer",
        "StartContainer",
    ] {
        let series = format!("crid_grpc_requests_total{{method=\"{method}\",code=\"OK\"}}");
        assert!(sample(&samples, &series) >= 1.0, "{series}");
        let count =
            format!("crid_grpc_request_duration_seconds_count{{method=\"{method}\",code=\"OK\"}}");
        assert!(sample(&samples, &count) >= 1.0, "{count}");
    }
    let series =
        format!("crid_grpc_requests_total{{method=\"CheckpointContainer\",code=\"{code_name}\"}}");
    assert!(sample(&samples, &series) >= 1.0, "{series}");
    for phase in [
        "netns",
        "cni",
        "pause_task",
        "container_create",
        "container_start",
    ] {
        let series = format!("crid_pod_start_phase_duration_seconds_count{{phase=\"{phase}\"}}");
        assert_eq!(sample(&samples, &series), 1.0, "{series}");
    }
    assert!(sample(&samples, "crid_image_pulls_total{result=\"success\"}") >= 1.0);
    assert!(sample(&samples, "crid_image_pull_bytes_total") > 0.0);
    // The pulled image's layers went straight into containerd's store.
    assert!(sample(&samples, "crid_image_layers_stored_total{path=\"direct\"}") >= 1.0);
    assert_eq!(sample(&samples, "crid_pods{state=\"ready\"}"), 1.0);
    assert_eq!(sample(&samples, "crid_containers{state=\"running\"}"), 1.0);

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

async fn container_stats(rt: &mut RuntimeClient, id: &str) -> ContainerStats {
    rt.container_stats(ContainerStatsRequest {
        container_id: id.to_string(),
    })
    .await
    .expect("ContainerStats")
    .into_inner()
    .stats
    .unwrap()
}

fn cpu_ns(s: &ContainerStats) -> u64 {
    s.cpu
        .as_ref()
        .unwrap()
        .usage_core_nano_seconds
        .unwrap()
        .value
}

/// eth0 (rx, tx) bytes.
fn eth0(s: &LinuxPodSandboxStats) -> (u64, u64) {
    let i = s
        .network
        .as_ref()
        .unwrap()
        .default_interface
        .clone()
        .expect("eth0 counters");
    assert_eq!(i.name, "eth0");
    (i.rx_bytes.unwrap().value, i.tx_bytes.unwrap().value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_follow_cpu_memory_and_network_use() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut rt = env.rt().await;
    // A cgroup parent, as kubelet gives every pod (with the cgroupfs
    // driver: a path); the pod's pressure is read there. Removed at the end.
    let parent_top = format!("crid-test-{}", env.bridge);
    let cgroupfs = rt
        .runtime_config(RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .linux
        .is_some_and(|l| l.cgroup_driver == CgroupDriver::Cgroupfs as i32);
    let mut pod = env.pod_config("busy");
    if cgroupfs {
        pod.linux.as_mut().unwrap().cgroup_parent = format!("/{parent_top}/pod-busy");
    }
    let sid = env.run_pod(&pod).await;
    let burner = env
        .run(
            &sid,
            &pod,
            env.container_config("burner", &["sh", "-c", "while :; do :; done"]),
        )
        .await;
    let holder = env
        .run(
            &sid,
            &pod,
            env.container_config(
                "holder",
                &[
                    "sh",
                    "-c",
                    "head -c 33554432 /dev/zero > /dev/shm/x; sleep 3600",
                ],
            ),
        )
        .await;
    let script = "mkdir -p /tmp/www && head -c 65536 /dev/zero | tr '\\0' x > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www";
    env.run(
        &sid,
        &pod,
        env.container_config("web", &["sh", "-c", script]),
    )
    .await;

    // CPU: usage grows between two samples; the second carries a rate.
    let first = container_stats(&mut rt, &burner).await;
    let mut second = first.clone();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        second = container_stats(&mut rt, &burner).await;
        if cpu_ns(&second) > cpu_ns(&first) {
            break;
        }
    }
    assert!(cpu_ns(&second) > cpu_ns(&first), "cpu usage did not grow");
    let rate = second.cpu.as_ref().unwrap().usage_nano_cores;
    assert!(rate.is_some_and(|r| r.value > 0), "{rate:?}");

    // Pressure (CRI 1.34 PSI): there exactly when the container's cgroup
    // in the unified hierarchy has pressure files; totals only grow.
    let info = rt
        .container_status(ContainerStatusRequest {
            container_id: burner.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let v: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    let pid = v["pid"].as_u64().expect("pid in verbose info");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let unified = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_start_matches('/').to_string());
    let has_psi = unified.is_some_and(|p| {
        ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .any(|root| {
                std::path::Path::new(root)
                    .join(&p)
                    .join("cpu.pressure")
                    .exists()
            })
    });
    let psi_total = |s: &ContainerStats| {
        s.cpu.as_ref().unwrap().psi.as_ref().map(|p| {
            let some = p.some.as_ref().expect("some");
            assert!((0.0..=100.0).contains(&some.avg10), "{some:?}");
            some.total
        })
    };
    let third = container_stats(&mut rt, &burner).await;
    assert_eq!(psi_total(&second).is_some(), has_psi, "{second:?}");
    assert!(psi_total(&third) >= psi_total(&second));
    assert_eq!(third.io.is_some(), has_psi);

    // Memory: the holder's 32 MiB of tmpfs count in its working set.
    let mut working_set = 0;
    for _ in 0..300 {
        let s = container_stats(&mut rt, &holder).await;
        working_set = s.memory.unwrap().working_set_bytes.unwrap().value;
        if working_set >= 30 << 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(working_set >= 30 << 20, "working set {working_set}");

    // The pod sums its containers.
    let p = env.pod_stats(&sid).await;
    let pod_cpu = p
        .cpu
        .as_ref()
        .unwrap()
        .usage_core_nano_seconds
        .unwrap()
        .value;
    let pod_mem = p.memory.as_ref().unwrap().working_set_bytes.unwrap().value;
    assert_eq!(p.containers.len(), 3);
    for c in &p.containers {
        assert!(pod_cpu >= cpu_ns(c), "pod cpu {pod_cpu} < {c:?}");
        let mem = c.memory.as_ref().unwrap().working_set_bytes.unwrap().value;
        assert!(pod_mem >= mem, "pod memory {pod_mem} < {mem}");
    }
    assert!(pod_mem >= 30 << 20);
    let pod_psi = p.cpu.as_ref().unwrap().psi.is_some();
    assert_eq!(pod_psi, cgroupfs && has_psi, "pod pressure");
    assert_eq!(p.io.is_some(), pod_psi);

    // Network: traffic from the host shows on the pod's eth0.
    let (rx0, tx0) = eth0(&p);
    let ip = env.pod_ip(&sid).await;
    for _ in 0..3 {
        let answer = http_get(&format!("{ip}:8080"));
        assert!(answer.contains("xxxx"), "{answer}");
    }
    let (rx1, tx1) = eth0(&env.pod_stats(&sid).await);
    assert!(rx1 > rx0, "rx {rx0} → {rx1}");
    assert!(tx1 >= tx0 + 3 * 65536, "tx {tx0} → {tx1}");

    env.stop_and_remove_pod(&sid).await;
    // The pod's cgroup parent, in every hierarchy runc made it in.
    let mut roots = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    roots.extend(
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path()),
    );
    for root in roots {
        let top = root.join(&parent_top);
        let _ = std::fs::remove_dir(top.join("pod-busy"));
        let _ = std::fs::remove_dir(&top);
        assert!(!top.exists(), "{} left", top.display());
    }
    env.assert_no_leaks();
}

/// kubelet (PodAndContainerStatsFromCRI) reads `network.default_interface`
/// whenever `network` is there: as containerd, crid sends `network` only
/// with eth0 as default interface, so not for a host-network pod or a
/// stopped one; ListPodSandboxStats lists only ready sandboxes, while
/// PodSandboxStats still answers for a stopped one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_stats_have_network_only_with_a_default_interface() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut rt = env.rt().await;
    let bridged = env.run_pod(&env.pod_config("bridged")).await;
    let no_pause = env
        .run_pod(&env.pod_config_without_shared_pid("no-pause"))
        .await;
    let hostnet = env.run_pod(&env.host_network_pod_config("hostnet")).await;
    let list = |rt: &mut RuntimeClient, id: &str| {
        let filter = Some(PodSandboxStatsFilter {
            id: id.to_string(),
            ..Default::default()
        });
        let mut rt = rt.clone();
        async move {
            let mut ids: Vec<(String, Option<NetworkUsage>)> = rt
                .list_pod_sandbox_stats(ListPodSandboxStatsRequest { filter })
                .await
                .expect("ListPodSandboxStats")
                .into_inner()
                .stats
                .into_iter()
                .map(|s| (s.attributes.unwrap().id, s.linux.and_then(|l| l.network)))
                .collect();
            ids.sort_by(|a, b| a.0.cmp(&b.0));
            ids
        }
    };
    let check = |what: &str, network: &Option<NetworkUsage>, want_eth0: bool| match network {
        Some(n) => {
            let d = n.default_interface.as_ref();
            assert_eq!(d.map(|d| d.name.as_str()), Some("eth0"), "{what}: {n:?}");
            assert!(want_eth0, "{what}: network {n:?}");
        }
        None => assert!(!want_eth0, "{what}: no network"),
    };
    for (sid, want) in [(&bridged, true), (&no_pause, true), (&hostnet, false)] {
        check(sid, &env.pod_stats(sid).await.network, want);
    }
    let all = list(&mut rt, "").await;
    assert_eq!(all.len(), 3, "{all:?}");
    for (sid, network) in &all {
        check(sid, network, sid != &hostnet);
    }

    // Stopped: still answered by id, without network; no longer listed.
    for sid in [&bridged, &no_pause, &hostnet] {
        env.stop_pod(sid).await;
        let p = env.pod_stats(sid).await;
        assert!(p.network.is_none(), "stopped {sid}: {:?}", p.network);
        assert!(list(&mut rt, sid).await.is_empty(), "stopped {sid} listed");
    }
    assert!(list(&mut rt, "").await.is_empty());
    let streamed = collect(
        rt.stream_pod_sandbox_stats(StreamPodSandboxStatsRequest::default())
            .await,
        |m| m.pod_sandbox_stats,
    )
    .await;
    assert!(streamed.is_empty(), "{streamed:?}");

    env.remove_all_pods().await;
    env.assert_no_leaks();
}

/// Every item of a list stream, in order.
async fn collect<T, R>(
    stream: Result<tonic::Response<tonic::Streaming<R>>, tonic::Status>,
    items: impl Fn(R) -> Vec<T>,
) -> Vec<T> {
    let mut stream = stream.expect("stream").into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.message().await.expect("stream message") {
        let batch = items(msg);
        assert!(
            !batch.is_empty(),
            "a stream message holds at least one item"
        );
        out.extend(batch);
    }
    out
}

fn sorted<T, K: Ord>(mut v: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    v.sort_by_key(|x| key(x));
    v
}

/// CRI 1.36 for kubelets of 1.33–1.36: the list streams (KEP 5825) give
/// what the List calls give, filters included; UpdatePodSandboxResources
/// (in-place pod resize) records the pod's resources, keeps them across a
/// restart of crid, and refuses an unknown pod or bad values; a container's
/// `stop_signal` is what StopContainer sends and what its status reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_1_36_list_streams_pod_resources_and_stop_signal() {
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::new().await;
    let pods = ["s1", "s2"].map(|n| env.pod_config(n));
    let mut sids = Vec::new();
    let mut cids = Vec::new();
    for pod in &pods {
        let sid = env.run_pod(pod).await;
        let cfg = env.container_config("c", &["/bin/sh", "-c", "sleep 3600"]);
        cids.push(env.run(&sid, pod, cfg).await);
        sids.push(sid);
    }
    let mut rt = env.rt().await;
    let list = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    let streamed = collect(
        rt.stream_pod_sandboxes(StreamPodSandboxesRequest::default())
            .await,
        |m| m.pod_sandboxes,
    )
    .await;
    assert_eq!(streamed.len(), 2);
    assert_eq!(
        sorted(streamed, |p| p.id.clone()),
        sorted(list, |p| p.id.clone())
    );
    let one = collect(
        rt.stream_containers(StreamContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: sids[1].clone(),
                ..Default::default()
            }),
        })
        .await,
        |m| m.containers,
    )
    .await;
    assert_eq!(
        one.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        [cids[1].clone()]
    );
    let stats = collect(
        rt.stream_container_stats(StreamContainerStatsRequest::default())
            .await,
        |m| m.container_stats,
    )
    .await;
    assert_eq!(stats.len(), 2);
    let pod_stats = collect(
        rt.stream_pod_sandbox_stats(StreamPodSandboxStatsRequest::default())
            .await,
        |m| m.pod_sandbox_stats,
    )
    .await;
    assert_eq!(pod_stats.len(), 2);
    let metrics = collect(
        rt.stream_pod_sandbox_metrics(StreamPodSandboxMetricsRequest {})
            .await,
        |m| m.pod_sandbox_metrics,
    )
    .await;
    let listed = rt
        .list_pod_sandbox_metrics(ListPodSandboxMetricsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pod_metrics;
    assert_eq!(
        sorted(metrics, |m| m.pod_sandbox_id.clone())
            .iter()
            .map(|m| m.pod_sandbox_id.clone())
            .collect::<Vec<_>>(),
        sorted(listed, |m| m.pod_sandbox_id.clone())
            .iter()
            .map(|m| m.pod_sandbox_id.clone())
            .collect::<Vec<_>>()
    );
    let images = collect(
        env.crid
            .images()
            .await
            .stream_images(StreamImagesRequest::default())
            .await,
        |m| m.images,
    )
    .await;
    let listed = env
        .crid
        .images()
        .await
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(
        sorted(images, |i| i.id.clone()),
        sorted(listed, |i| i.id.clone())
    );
    // A filter that matches nothing: the stream ends without a message.
    let none = collect(
        rt.stream_pod_sandboxes(StreamPodSandboxesRequest {
            filter: Some(PodSandboxFilter {
                id: "nothing-has-this-id".into(),
                ..Default::default()
            }),
        })
        .await,
        |m| m.pod_sandboxes,
    )
    .await;
    assert!(none.is_empty());

    // In-place pod resize.
    let resources = LinuxContainerResources {
        cpu_shares: 512,
        memory_limit_in_bytes: 256 << 20,
        ..Default::default()
    };
    // An overhead is an amount, not a limit: 1 MiB of memory is fine.
    rt.update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
        pod_sandbox_id: sids[0].clone(),
        overhead: Some(LinuxContainerResources {
            memory_limit_in_bytes: 1 << 20,
            ..Default::default()
        }),
        resources: Some(resources.clone()),
    })
    .await
    .unwrap();
    let refused = |id: &str, r: LinuxContainerResources| UpdatePodSandboxResourcesRequest {
        pod_sandbox_id: id.into(),
        overhead: None,
        resources: Some(r),
    };
    let err = rt
        .update_pod_sandbox_resources(refused("no-such-pod", resources.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    let err = rt
        .update_pod_sandbox_resources(refused(
            &sids[0],
            LinuxContainerResources {
                cpu_shares: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let recorded = |info: &std::collections::HashMap<String, String>| {
        let v: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
        v["podResources"]["resources"]["memory_limit_in_bytes"].as_i64()
    };
    let verbose = |id: String| PodSandboxStatusRequest {
        pod_sandbox_id: id,
        verbose: true,
    };
    let info = rt
        .pod_sandbox_status(verbose(sids[0].clone()))
        .await
        .unwrap()
        .into_inner()
        .info;
    assert_eq!(
        recorded(&info),
        Some(256 << 20),
        "the refused update changed nothing"
    );
    let v: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    assert_eq!(
        v["podResources"]["overhead"]["memory_limit_in_bytes"].as_i64(),
        Some(1 << 20)
    );
    env.crid.kill9();
    env.crid.restart();
    let mut rt = env.rt().await;
    let info = rt
        .pod_sandbox_status(verbose(sids[0].clone()))
        .await
        .unwrap()
        .into_inner()
        .info;
    assert_eq!(recorded(&info), Some(256 << 20), "kept across a restart");
    let info = rt
        .pod_sandbox_status(verbose(sids[1].clone()))
        .await
        .unwrap()
        .into_inner()
        .info;
    assert_eq!(recorded(&info), None);

    // ContainerConfig.stop_signal: the shell traps USR1 (exit 7) and would
    // die of TERM (143).
    let mut cfg = env.container_config(
        "usr1",
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 7' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    cfg.stop_signal = Signal::Sigusr1 as i32;
    let log = std::path::Path::new(&pods[0].log_directory).join(&cfg.log_path);
    let cid = env.run(&sids[0], &pods[0], cfg).await;
    env.wait_for_file(&log, "ready").await;
    assert_eq!(env.status(&cid).await.stop_signal, Signal::Sigusr1 as i32);
    assert_eq!(
        env.status(&cids[0]).await.stop_signal,
        Signal::Sigterm as i32
    );
    rt.stop_container(StopContainerRequest {
        container_id: cid.clone(),
        timeout: 10,
    })
    .await
    .unwrap();
    assert_eq!(env.status(&cid).await.exit_code, 7);
    let mut bad = env.container_config("bad-signal", &["/bin/true"]);
    bad.stop_signal = 999;
    let err = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sids[0].clone(),
            config: Some(bad),
            sandbox_config: Some(pods[0].clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    for sid in &sids {
        env.stop_and_remove_pod(sid).await;
    }
    env.assert_no_leaks();
}
