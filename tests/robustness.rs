//! Retries, client deadlines, bad input and secure defaults: every create is
//! safe to retry, a dropped create still finishes or rolls back, invalid
//! fields are rejected by name without changing anything.

mod support;

use crid::cri::*;
use std::time::Duration;
use support::pod::PodEnv;
use support::*;

async fn pod_ids(env: &PodEnv) -> Vec<(String, i32)> {
    env.rt()
        .await
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|p| (p.id, p.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_or_start_with_expired_deadline_completes_and_retry_names_the_id() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("deadline");
    let mut req = tonic::Request::new(RunPodSandboxRequest {
        config: Some(pod.clone()),
        runtime_handler: String::new(),
    });
    req.set_timeout(Duration::from_millis(5));
    let err = env.rt().await.run_pod_sandbox(req).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    // The dropped RPC's work finishes on its own (bounded wait).
    let mut pods = vec![];
    for _ in 0..300 {
        pods = pod_ids(&env).await;
        if !pods.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pods.len(), 1, "{}", env.crid.log());
    assert_eq!(pods[0].1, PodSandboxState::SandboxReady as i32);
    let retry = env
        .rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(retry.code(), tonic::Code::AlreadyExists);
    assert!(retry.message().contains(&pods[0].0), "{retry:?}");

    // CreateContainer with an expired deadline: created once, retry names it.
    let c = env.container_config("c", &["sleep", "3600"]);
    let mut req = tonic::Request::new(CreateContainerRequest {
        pod_sandbox_id: pods[0].0.clone(),
        config: Some(c.clone()),
        sandbox_config: Some(pod.clone()),
    });
    req.set_timeout(Duration::from_millis(5));
    let _ = env.rt().await.create_container(req).await;
    let mut cid = String::new();
    for _ in 0..300 {
        let r = env
            .rt()
            .await
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pods[0].0.clone(),
                config: Some(c.clone()),
                sandbox_config: Some(pod.clone()),
            })
            .await;
        match r {
            Err(e) if e.code() == tonic::Code::AlreadyExists => {
                let listed = env
                    .rt()
                    .await
                    .list_containers(ListContainersRequest::default())
                    .await
                    .unwrap()
                    .into_inner()
                    .containers;
                if let Some(l) = listed.first() {
                    assert!(e.message().contains(&l.id), "{e:?}");
                    cid = l.id.clone();
                    break;
                }
            }
            Ok(r) => {
                cid = r.into_inner().container_id;
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!cid.is_empty());

    // StartContainer with an expired deadline: the start still completes.
    let mut req = tonic::Request::new(StartContainerRequest {
        container_id: cid.clone(),
    });
    req.set_timeout(Duration::from_millis(5));
    let _ = env.rt().await.start_container(req).await;
    let mut state = -1;
    for _ in 0..300 {
        state = env
            .rt()
            .await
            .container_status(ContainerStatusRequest {
                container_id: cid.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
            .state;
        if state == ContainerState::ContainerRunning as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state,
        ContainerState::ContainerRunning as i32,
        "{}",
        env.crid.log()
    );
    env.remove_all_pods().await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_failed_create_succeeds_and_stop_remove_repeat() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("retry");
    let err = env
        .rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "no-such-handler".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let sid = env.run_pod(&pod).await;
    let mut rt = env.rt().await;
    for _ in 0..2 {
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sid.clone(),
        })
        .await
        .unwrap();
    }
    for _ in 0..2 {
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: sid.clone(),
        })
        .await
        .unwrap();
    }
    let st = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: sid.clone(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::NotFound);
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_rejected_by_name_and_change_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let good = env.pod_config("valid");
    type Break = fn(&mut PodSandboxConfig);
    let pod_cases: Vec<(&str, Break)> = vec![
        ("config.metadata.name", |c| {
            c.metadata.as_mut().unwrap().name = "../x".into()
        }),
        ("config.metadata.uid", |c| {
            c.metadata.as_mut().unwrap().uid = "a\0b".into()
        }),
        ("config.hostname", |c| {
            c.hostname = "h\n127.0.0.1 evil".into()
        }),
        ("config.log_directory", |c| {
            c.log_directory = "relative/dir".into()
        }),
        ("config.log_directory", |c| {
            c.log_directory = "/var/log/../../etc".into()
        }),
        ("config.labels", |c| {
            c.labels.insert("bad key!".into(), "v".into());
        }),
        ("config.dns_config", |c| {
            c.dns_config = Some(DnsConfig {
                searches: vec!["a\nnameserver 1.2.3.4".into()],
                ..Default::default()
            })
        }),
        ("config.port_mappings", |c| {
            c.port_mappings = vec![PortMapping {
                container_port: 70000,
                ..Default::default()
            }]
        }),
        ("config.linux.sysctls", |c| {
            c.linux
                .as_mut()
                .unwrap()
                .sysctls
                .insert("kernel.panic".into(), "1".into());
        }),
        ("cpu_shares", |c| {
            c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
                cpu_shares: 1 << 40,
                ..Default::default()
            })
        }),
    ];
    let mut rt = env.rt().await;
    for (field, breaker) in pod_cases {
        let mut c = good.clone();
        breaker(&mut c);
        let e = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(c),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field), "{field}: {e:?}");
    }
    assert!(pod_ids(&env).await.is_empty());
    assert!(env.netns_files().is_empty());

    let sid = env.run_pod(&good).await;
    type CBreak = fn(&mut ContainerConfig);
    let container_cases: Vec<(&str, CBreak)> = vec![
        ("config.metadata.name", |c| {
            c.metadata.as_mut().unwrap().name = String::new()
        }),
        ("config.log_path", |c| {
            c.log_path = "../../etc/passwd".into()
        }),
        ("config.mounts.container_path", |c| {
            c.mounts.push(Mount {
                container_path: "rel".into(),
                ..Default::default()
            })
        }),
        ("config.mounts.host_path", |c| {
            c.mounts.push(Mount {
                container_path: "/x".into(),
                host_path: "/tmp/\0".into(),
                ..Default::default()
            })
        }),
        ("config.envs", |c| {
            c.envs.push(KeyValue {
                key: "A=B".into(),
                value: "x".into(),
            })
        }),
        ("config.envs", |c| {
            c.envs.push(KeyValue {
                key: "A".into(),
                value: b"x\0y".to_vec(),
            })
        }),
        ("memory_limit_in_bytes", |c| {
            c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
                memory_limit_in_bytes: 1024,
                ..Default::default()
            })
        }),
        ("cpu_shares", |c| {
            c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
                cpu_shares: -5,
                ..Default::default()
            })
        }),
    ];
    let base = env.container_config("c", &["sleep", "1"]);
    for (field, breaker) in container_cases {
        let mut c = base.clone();
        breaker(&mut c);
        let e = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sid.clone(),
                config: Some(c),
                sandbox_config: Some(good.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field), "{field}: {e:?}");
    }
    // Ids: an empty one is invalid; junk and a well-formed unknown id name
    // nothing: not found, and the idempotent stop/remove calls succeed for
    // them as the CRI asks (critest's Idempotence specs send UUIDs).
    let e = rt
        .container_status(ContainerStatusRequest {
            container_id: String::new(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let e = rt
        .container_status(ContainerStatusRequest {
            container_id: "../../etc".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    for junk in ["../../etc", "7e75bfa3-0a0f-435f-95f3-6128f5418415"] {
        rt.stop_container(StopContainerRequest {
            container_id: junk.into(),
            timeout: 0,
        })
        .await
        .unwrap();
        rt.remove_container(RemoveContainerRequest {
            container_id: junk.into(),
        })
        .await
        .unwrap();
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: junk.into(),
        })
        .await
        .unwrap();
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: junk.into(),
        })
        .await
        .unwrap();
    }
    let e = rt
        .container_status(ContainerStatusRequest {
            container_id: "ab".repeat(32),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    let listed = rt
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(listed.is_empty(), "{listed:?}");
    env.remove_all_pods().await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_defaults_socket_mode_loopback_streaming_runtime_default_seccomp() {
    if missing_tools() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let env = PodEnv::new().await;
    let mode = std::fs::metadata(&env.crid.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "socket mode {mode:o}");

    let pod = env.pod_config("secure");
    let sid = env.run_pod(&pod).await;
    let cid = env
        .run(&sid, &pod, {
            let mut c = env.container_config("c", &["sleep", "3600"]);
            let linux = c.linux.get_or_insert_with(Default::default);
            let sc = linux.security_context.get_or_insert_with(Default::default);
            sc.seccomp = Some(crid::cri::SecurityProfile {
                profile_type: crid::cri::security_profile::ProfileType::RuntimeDefault as i32,
                localhost_ref: String::new(),
            });
            c
        })
        .await;
    let mut rt = env.rt().await;
    let url = rt
        .exec(ExecRequest {
            container_id: cid.clone(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // Asked for RuntimeDefault: filter mode 2. (No profile at all means
    // unconfined, as in the CRI; see containers.rs.)
    let out = rt
        .exec_sync(ExecSyncRequest {
            container_id: cid.clone(),
            cmd: vec!["grep".into(), "Seccomp:".into(), "/proc/self/status".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains('2'), "seccomp not filtering: {stdout:?}");
    env.remove_all_pods().await;
    env.assert_no_leaks();
}
