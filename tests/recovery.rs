//! crid survives its own restarts (graceful and kill -9 mid-flight) and
//! containerd restarts: state is rebuilt identically, exits that happened
//! while nobody listened are reported with their real code, and whatever a
//! crash left half-done is rolled back without leaks.

mod support;

use crid::cri::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::pod::PodEnv;
use support::*;

/// A container that exits with `code` once `<host_dir>/go` exists (so the
/// test decides when it exits, e.g. while crid or containerd is down).
fn exits_on_signal_file(
    env: &PodEnv,
    name: &str,
    host_dir: &std::path::Path,
    code: i32,
) -> ContainerConfig {
    let script = format!("while [ ! -f /sig/go ]; do sleep 0.1; done; exit {code}");
    let mut c = env.container_config(name, &["/bin/sh", "-c", &script]);
    c.mounts.push(Mount {
        container_path: "/sig".into(),
        host_path: host_dir.to_string_lossy().into_owned(),
        ..Default::default()
    });
    c
}

/// Everything kubelet can see, in a comparable form.
async fn snapshot(env: &PodEnv) -> BTreeMap<String, String> {
    let mut rt = env.rt().await;
    let mut out = BTreeMap::new();
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    for p in pods {
        let st = env.pod_status(&p.id).await.status.unwrap();
        let net = st.network.unwrap_or_default();
        out.insert(
            format!("pod {}", p.id),
            format!(
                "state={} ip={} created={} name={:?}",
                st.state, net.ip, st.created_at, st.metadata
            ),
        );
    }
    let containers = rt
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    for c in containers {
        let st = env.status(&c.id).await;
        out.insert(
            format!("container {}", c.id),
            format!(
                "pod={} state={} exit={} started={} finished={} reason={} log={}",
                c.pod_sandbox_id,
                st.state,
                st.exit_code,
                st.started_at,
                st.finished_at,
                st.reason,
                st.log_path
            ),
        );
    }
    out
}

/// Leases crid created for rootfs preparation and never dropped.
fn crid_leases(env: &PodEnv) -> Vec<String> {
    env.containerd
        .ctr(&["leases", "ls"])
        .lines()
        .filter(|l| l.contains("crid-create-"))
        .map(str::to_string)
        .collect()
}

fn assert_no_leaks_at_all(env: &PodEnv) {
    env.assert_no_leaks();
    assert_eq!(crid_leases(env), Vec::<String>::new(), "leases leaked");
    let dirs = |d: &str| {
        std::fs::read_dir(env.crid.root.join(d))
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    assert_eq!(dirs("sandboxes"), 0, "sandbox dirs leaked");
    assert_eq!(dirs("containers"), 0, "container dirs leaked");
}

async fn runtime_ready(env: &PodEnv) -> Option<bool> {
    let mut rt = env.rt().await;
    let st = rt
        .status(StatusRequest { verbose: false })
        .await
        .ok()?
        .into_inner();
    st.status?
        .conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady")
        .map(|c| c.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_keeps_state_and_sees_exits_that_happened_while_down() {
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::new().await;
    let sig = short_tempdir("sig");
    let pod_a = env.pod_config("rec-a");
    let a = env.run_pod(&pod_a).await;
    let a_long = env
        .run(&a, &pod_a, env.container_config("long", &["sleep", "3600"]))
        .await;
    let a_done = env
        .run(
            &a,
            &pod_a,
            env.container_config("done", &["/bin/sh", "-c", "exit 3"]),
        )
        .await;
    assert_eq!(env.wait_exited(&a_done).await.exit_code, 3);
    // Created and never started: crid has written no status file for it.
    let a_created = env
        .create(
            &a,
            &pod_a,
            env.container_config("created", &["sleep", "3600"]),
        )
        .await;
    let pod_b = env.pod_config("rec-b");
    let b = env.run_pod(&pod_b).await;
    let b_later = env
        .run(
            &b,
            &pod_b,
            exits_on_signal_file(&env, "later", sig.path(), 42),
        )
        .await;

    let before = snapshot(&env).await;
    env.crid.stop();
    env.crid.restart();
    assert_eq!(
        snapshot(&env).await,
        before,
        "state changed across a restart"
    );

    // Exit while crid is down: reported with the real code afterwards.
    env.crid.stop();
    std::fs::write(sig.path().join("go"), "").unwrap();
    for _ in 0..100 {
        if !env
            .containerd
            .ctr(&["tasks", "ls"])
            .contains(&b_later[..12])
            || env
                .containerd
                .ctr(&["tasks", "ls"])
                .lines()
                .any(|l| l.starts_with(&b_later) && l.contains("STOPPED"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.crid.restart();
    let st = env.wait_exited(&b_later).await;
    assert_eq!(st.exit_code, 42, "{st:?}");
    let st = env.status(&a_long).await;
    assert_eq!(st.state, ContainerState::ContainerRunning as i32);
    let st = env.status(&a_created).await;
    assert_eq!(st.state, ContainerState::ContainerCreated as i32);
    assert!(
        !env.crid.root.join("containers").join(&a_created).exists(),
        "CreateContainer wrote a container dir"
    );

    // A status file a machine crash left empty: that container is reported
    // as exited for an unknown cause, every other one is recovered as it was.
    env.crid.stop();
    let status_file = env
        .crid
        .root
        .join("containers")
        .join(&a_long)
        .join("status.json");
    std::fs::write(&status_file, "").unwrap();
    env.crid.restart();
    let st = env.status(&a_long).await;
    assert_eq!(st.state, ContainerState::ContainerExited as i32, "{st:?}");
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (255, "Unknown"),
        "{st:?}"
    );
    assert!(
        !env.containerd
            .ctr(&["tasks", "ls"])
            .lines()
            .any(|l| l.starts_with(&a_long)),
        "the task of a container with an unreadable status is left"
    );
    assert_eq!(env.status(&a_done).await.exit_code, 3);
    assert_eq!(env.status(&b_later).await.exit_code, 42);
    // The created container starts after all that.
    env.start(&a_created).await;
    let st = env.status(&a_created).await;
    assert_eq!(st.state, ContainerState::ContainerRunning as i32, "{st:?}");

    env.remove_all_pods().await;
    assert_no_leaks_at_all(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_pod_churn_recovers_consistently_and_leaks_nothing() {
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::new().await;
    let env_ref = &env;
    let progress = Arc::new(AtomicUsize::new(0));
    // Four workers, 20 pod names in all: create, maybe a container, stop, remove.
    let socket = env.crid.socket.clone();
    let mut workers = Vec::new();
    for w in 0..4 {
        let configs: Vec<_> = (0..5)
            .map(|i| env_ref.pod_config(&format!("churn-{w}-{i}")))
            .collect();
        let container = env_ref.container_config("c", &["sleep", "3600"]);
        let progress = progress.clone();
        let socket = socket.clone();
        workers.push(tokio::spawn(async move {
            let Ok(mut rt) = connect(&socket).await else {
                return;
            };
            for round in 0..50usize {
                let pod = &configs[round % configs.len()];
                let Ok(r) = rt
                    .run_pod_sandbox(RunPodSandboxRequest {
                        config: Some(pod.clone()),
                        runtime_handler: String::new(),
                    })
                    .await
                else {
                    return;
                };
                let id = r.into_inner().pod_sandbox_id;
                progress.fetch_add(1, Ordering::SeqCst);
                if round % 2 == 0 {
                    if let Ok(c) = rt
                        .create_container(CreateContainerRequest {
                            pod_sandbox_id: id.clone(),
                            config: Some(container.clone()),
                            sandbox_config: Some(pod.clone()),
                        })
                        .await
                    {
                        let _ = rt
                            .start_container(StartContainerRequest {
                                container_id: c.into_inner().container_id,
                            })
                            .await;
                    }
                }
                if round % 3 == 2 {
                    continue; // leave this one running
                }
                let _ = rt
                    .stop_pod_sandbox(StopPodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    })
                    .await;
                let _ = rt
                    .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                    .await;
            }
        }));
    }
    // Kill after a pseudo-random amount of progress (bounded in time).
    let target = 6 + (std::process::id() as usize % 10);
    for _ in 0..600 {
        if progress.load(Ordering::SeqCst) >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(
        (std::process::id() % 300) as u64 + 20,
    ))
    .await;
    env.crid.kill9();
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    env.crid.restart();

    let pods = env
        .rt()
        .await
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    let tasks = env.containerd.ctr(&["tasks", "ls"]);
    let netns = env.netns_files();
    let log = env.crid.log();
    eprintln!(
        "killed after {} creates; {} pods listed after restart; {} recovery fixes",
        progress.load(Ordering::SeqCst),
        pods.len(),
        log.lines()
            .filter(|l| l.contains("orphan") || l.contains("unfinished"))
            .count()
    );
    for p in &pods {
        if p.state == PodSandboxState::SandboxReady as i32 {
            assert!(
                tasks
                    .lines()
                    .any(|l| l.starts_with(&p.id) && l.contains("RUNNING")),
                "READY pod {} without a running pause task:\n{tasks}",
                p.id
            );
            assert!(netns.contains(&p.id), "READY pod {} without netns", p.id);
            let ip = env.pod_ip(&p.id).await;
            assert!(!ip.is_empty(), "READY pod {} without IP", p.id);
        }
    }
    for id in &netns {
        assert!(
            pods.iter().any(|p| &p.id == id),
            "netns {id} owned by no listed pod"
        );
    }
    env.remove_all_pods().await;
    assert_no_leaks_at_all(&env);
}

async fn connect(socket: &std::path::Path) -> Result<RuntimeClient, String> {
    let ch = crid::util::unix_grpc::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    Ok(RuntimeClient::new(ch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restart_under_crid_keeps_pods_and_reports_missed_exits() {
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::new().await;
    let sig = short_tempdir("sig");
    let pod = env.pod_config("ctd-restart");
    let sid = env.run_pod(&pod).await;
    let long = env
        .run(&sid, &pod, env.container_config("long", &["sleep", "3600"]))
        .await;
    let later = env
        .run(
            &sid,
            &pod,
            exits_on_signal_file(&env, "later", sig.path(), 9),
        )
        .await;
    assert_eq!(runtime_ready(&env).await, Some(true));

    env.containerd.stop();
    let mut saw_not_ready = false;
    for _ in 0..100 {
        if runtime_ready(&env).await == Some(false) {
            saw_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_not_ready,
        "RuntimeReady stayed true with containerd down"
    );
    std::fs::write(sig.path().join("go"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.containerd.start_again();
    let mut ready = false;
    for _ in 0..300 {
        if runtime_ready(&env).await == Some(true) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "RuntimeReady never came back:\n{}", env.crid.log());

    let st = env.wait_exited(&later).await;
    assert_eq!(st.exit_code, 9, "{st:?}");
    assert_eq!(
        env.status(&long).await.state,
        ContainerState::ContainerRunning as i32
    );
    assert_eq!(
        env.pod_status(&sid).await.status.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    // The event stream works again: a fresh exit is seen.
    let quick = env
        .run(
            &sid,
            &pod,
            env.container_config("quick", &["/bin/sh", "-c", "exit 5"]),
        )
        .await;
    assert_eq!(env.wait_exited(&quick).await.exit_code, 5);

    env.remove_all_pods().await;
    assert_no_leaks_at_all(&env);
}
