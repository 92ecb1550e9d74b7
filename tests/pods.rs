//! Pod sandboxes on a real containerd with real CNI plugins: IPs, traffic,
//! host ports, host network, teardown without leaks, rollback on CNI failure.

mod support;

use crid::cri::*;
use support::pod::{http_get, in_own_pid_namespace, PodEnv};
use support::*;

/// A busybox httpd answering `body` on port 8080 inside the pod.
fn httpd(env: &PodEnv, body: &str) -> ContainerConfig {
    let script = format!("mkdir -p /tmp/www && echo {body} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www");
    env.container_config("web", &["/bin/sh", "-c", &script])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gets_ip_from_bridge_and_serves_tcp() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("web");
    let sid = env.run_pod(&pod).await;
    let st = env.pod_status(&sid).await;
    let status = st.status.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.unwrap().ip;
    let prefix = env.subnet.rsplit_once('.').unwrap().0.to_string();
    assert!(ip.starts_with(&prefix), "pod ip {ip} not in {}", env.subnet);
    assert_eq!(env.netns_files().len(), 1);
    assert_eq!(env.allocated_ips().len(), 1);

    env.run(&sid, &pod, httpd(&env, "hello-from-pod")).await;
    let answer = http_get(&format!("{ip}:8080"));
    assert!(answer.contains("hello-from-pod"), "{answer}");

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_port_mapping_reaches_the_pod() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut pod = env.pod_config("hostport");
    let host_port = support::image::free_port() as i32;
    pod.port_mappings = vec![PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 8080,
        host_port,
        host_ip: String::new(),
    }];
    let sid = env.run_pod(&pod).await;
    env.run(&sid, &pod, httpd(&env, "via-hostport")).await;
    // The bridge's gateway address is on the host: DNAT'ed by portmap.
    let ip = env.pod_ip(&sid).await;
    let gateway = format!("{}.1", ip.rsplit_once('.').unwrap().0);
    let answer = http_get(&format!("{gateway}:{host_port}"));
    assert!(answer.contains("via-hostport"), "{answer}");
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_pod_shares_the_hosts_namespace() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.host_network_pod_config("hostnet");
    let sid = env.run_pod(&pod).await;
    assert!(
        env.netns_files().is_empty(),
        "no netns for a host-network pod"
    );
    assert!(
        env.allocated_ips().is_empty(),
        "no CNI for a host-network pod"
    );
    let info = env.pod_status(&sid).await.info["info"].clone();
    let pid = serde_json::from_str::<serde_json::Value>(&info).unwrap()["pid"]
        .as_u64()
        .unwrap();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(theirs, ours);
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// crid's own pause program, asked for RuntimeDefault seccomp, runs under
/// the profile made for it and is still the pod's init: an orphan of the
/// shared PID namespace is reaped once it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_pause_process_reaps_the_pods_orphans() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut pod = env.pod_config("reaper");
    let sc = pod.linux.as_mut().and_then(|l| l.security_context.as_mut());
    let sc = sc.unwrap();
    sc.seccomp = Some(SecurityProfile {
        profile_type: security_profile::ProfileType::RuntimeDefault as i32,
        localhost_ref: String::new(),
    });
    let sid = env.run_pod(&pod).await;
    let info = env.pod_status(&sid).await.info["info"].clone();
    let pause = serde_json::from_str::<serde_json::Value>(&info).unwrap()["pid"]
        .as_u64()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pause}/status")).unwrap();
    assert!(
        status.lines().any(|l| l == "Seccomp:\t2"),
        "pause runs under a seccomp filter: {status}"
    );
    // The subshell's `sleep` outlives it: the pod's init (pause) inherits it.
    let cid = env
        .run(
            &sid,
            &pod,
            env.container_config(
                "orphaner",
                &["/bin/sh", "-c", "(sleep 0.3 &); exec sleep 3600"],
            ),
        )
        .await;
    let children = || {
        std::fs::read_to_string(format!("/proc/{pause}/task/{pause}/children")).unwrap_or_default()
    };
    let state = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(") ").next().map(|r| r.chars().next().unwrap()))
    };
    let mut seen_orphan = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // Children of pause other than the container's own process.
        let kids: Vec<String> = children().split_whitespace().map(String::from).collect();
        let orphans: Vec<&String> = kids
            .iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains("0.3"))
                    || state(p) == Some('Z')
            })
            .collect();
        seen_orphan |= !orphans.is_empty();
        if seen_orphan && orphans.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "orphan not reaped by pause (children {kids:?}, seen {seen_orphan})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let st = env.status(&cid).await;
    assert_eq!(st.state, ContainerState::ContainerRunning as i32);
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_cni_plugin_fails_the_pod_and_leaves_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    assert_broken_cni_rolls_back(&env, env.pod_config("broken")).await;
}

/// With a conflist whose IPAM cannot work (an invalid subnet), RunPodSandbox
/// fails with the plugin's message, and nothing is left.
async fn assert_broken_cni_rolls_back(env: &PodEnv, pod: PodSandboxConfig) {
    std::fs::write(
        env.crid.cni_conf_dir.join("10-test.conflist"),
        serde_json::json!({
            "cniVersion": "1.0.0", "name": env.bridge,
            "plugins": [{"type": "bridge", "bridge": env.bridge,
                         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.999.0.0/24"}]],
                                  "dataDir": env.ipam_dir}}]
        })
        .to_string(),
    )
    .unwrap();
    let err = env
        .rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("CNI"), "{err:?}");
    assert!(
        err.message().contains("10.999.0.0"),
        "plugin message passed on: {err:?}"
    );
    let pods = env
        .rt()
        .await
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap();
    assert!(pods.into_inner().items.is_empty());
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sandbox_config_is_rejected_and_changes_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut rt = env.rt().await;
    let mut pod = env.pod_config("x");
    pod.metadata.as_mut().unwrap().uid.clear();
    let err = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("metadata.uid"), "{err:?}");
    let err = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(env.pod_config("y")),
            runtime_handler: "no-such-handler".into(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("no-such-handler"), "{err:?}");
    let err = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: "0123456789abcdef".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    // Stop and remove of an unknown sandbox are fine (kubelet retries them).
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: "0123456789abcdef".into(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: "0123456789abcdef".into(),
    })
    .await
    .unwrap();
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_pod_name_twice_is_refused_naming_the_holder() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("dup");
    let sid = env.run_pod(&pod).await;
    let err = env
        .rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    assert!(err.message().contains(&sid), "{err:?}");
    // Stop twice, remove twice: idempotent.
    env.stop_and_remove_pod(&sid).await;
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_runtime_handler_runs_pods() {
    if missing_tools() || which("crun").is_none() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config("crun");
    let result = env
        .rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "crun".into(),
        })
        .await;
    // crun 1.8 refuses cgroup v1/v2 hybrid hosts with v2 controllers (this VM):
    // then the failure must be crun's own and leave nothing behind.
    let hybrid = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| !c.trim().is_empty());
    let sid = match result {
        Err(e) if hybrid => {
            assert!(
                e.message().contains("hybrid mode"),
                "crun ran and refused the host: {e:?}"
            );
            env.assert_no_leaks();
            return;
        }
        r => r.unwrap().into_inner().pod_sandbox_id,
    };
    let st = env.pod_status(&sid).await.status.unwrap();
    assert_eq!(st.runtime_handler, "crun");
    let cid = env
        .run(
            &sid,
            &pod,
            env.container_config("c", &["/bin/sh", "-c", "echo ran-by-crun"]),
        )
        .await;
    let s = env.wait_exited(&cid).await;
    assert_eq!(s.exit_code, 0);
    let info = env.containerd.ctr(&["containers", "info", &sid]);
    assert!(info.contains("crun"), "runc options name crun: {info}");
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sandboxes_created_and_removed_leak_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    for i in 0..50 {
        let pod = env.pod_config(&format!("loop{i}"));
        let sid = env.run_pod(&pod).await;
        env.stop_and_remove_pod(&sid).await;
    }
    env.assert_no_leaks();
}

/// A fresh crid builds its pause image once, however many RunPodSandbox
/// calls (and its own start-up) ask for it at the same time. (The race this
/// guards against, two builds writing the same ingest, was seen once in a
/// full test run; this test does not force it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_pods_at_once_share_one_sandbox_image_setup() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pods: Vec<_> = (0..4)
        .map(|i| env.pod_config(&format!("first{i}")))
        .collect();
    let ids = futures::future::join_all(pods.iter().map(|p| env.run_pod(p))).await;
    assert_eq!(
        env.crid.log().matches("built crid's pause image").count(),
        1,
        "{}",
        env.crid.log()
    );
    for sid in ids {
        env.stop_and_remove_pod(&sid).await;
    }
    env.assert_no_leaks();
}

/// crid keeps the sandbox image in memory once found. If its snapshot goes
/// anyway (removed behind crid's back), the next pod unpacks it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_image_whose_snapshot_went_is_unpacked_again() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let sid = env.run_pod(&env.pod_config("before")).await;
    env.stop_and_remove_pod(&sid).await;

    let status = env
        .crid
        .images()
        .await
        .image_status(crid::cri::ImageStatusRequest {
            image: Some(crid::cri::ImageSpec {
                image: "registry.k8s.io/pause:3.9".into(),
                ..Default::default()
            }),
            verbose: true,
        })
        .await
        .expect("image status")
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&status.info["info"]).expect("info json");
    let chain = info["chainID"].as_str().expect("chainID").to_string();
    // This removal used to fail now and then in full `make test` runs
    // ("cannot remove snapshot with child", no child listed): crid deleted
    // the pause container's record before its rootfs snapshot, and when
    // containerd's GC collected the snapshot in between, containerd 1.6 left
    // it in the pause layer's list of children. crid now removes the
    // snapshot first; the listing says which snapshots there are if it fails.
    if let Err(e) = env.containerd.try_ctr(&["snapshots", "rm", &chain]) {
        let listing = env.containerd.ctr(&["snapshots", "ls"]);
        panic!("ctr snapshots rm {chain}: {e}\n{listing}");
    }
    assert!(
        !env.containerd.ctr(&["snapshots", "ls"]).contains(&chain),
        "snapshot still there"
    );

    let sid = env.run_pod(&env.pod_config("after")).await;
    assert_eq!(
        env.pod_status(&sid).await.status.unwrap().state,
        crid::cri::PodSandboxState::SandboxReady as i32
    );
    assert!(env.containerd.ctr(&["snapshots", "ls"]).contains(&chain));
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// The sandbox image is pinned (kubelet's image GC skips it) but RemoveImage
/// removes it, as in containerd's CRI; the next pod gets it back (built
/// locally here: the default `registry.k8s.io/pause:3.9` cannot be pulled),
/// runs, and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_sandbox_image_comes_back_for_the_next_pod() {
    if missing_tools() {
        return;
    }
    const SANDBOX: &str = "registry.k8s.io/pause:3.9";
    let env = PodEnv::new().await;
    // A pod before: the sandbox image is in use and cached by crid.
    let sid = env.run_pod(&env.pod_config("before")).await;
    env.stop_and_remove_pod(&sid).await;

    let mut images = env.crid.images().await;
    let sandbox_images = |list: Vec<Image>| -> Vec<Image> {
        list.into_iter()
            .filter(|i| i.repo_tags.iter().any(|t| t == SANDBOX))
            .collect()
    };
    let list = |mut c: ImageClient| async move {
        c.list_images(ListImagesRequest::default())
            .await
            .expect("ListImages")
            .into_inner()
            .images
    };
    let listed = sandbox_images(list(images.clone()).await);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].pinned, "pinned in ListImages: {listed:?}");
    let status = images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: SANDBOX.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
        .expect("present");
    assert!(status.pinned, "pinned in ImageStatus");

    images
        .remove_image(RemoveImageRequest {
            image: Some(ImageSpec {
                image: SANDBOX.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("RemoveImage of the sandbox image");
    assert!(sandbox_images(list(images.clone()).await).is_empty());

    // A pod with a pause container (shared PID namespace) and one without.
    for pod in [
        env.pod_config("after"),
        env.pod_config_without_shared_pid("after-nopause"),
    ] {
        let sid = env.run_pod(&pod).await;
        let cfg = if pod.metadata.as_ref().unwrap().name == "after" {
            env.container_config("c", &["sleep", "3600"])
        } else {
            in_own_pid_namespace(env.container_config("c", &["sleep", "3600"]))
        };
        let cid = env.run(&sid, &pod, cfg).await;
        assert_eq!(
            env.status(&cid).await.state,
            ContainerState::ContainerRunning as i32
        );
        env.stop_and_remove_pod(&sid).await;
        env.assert_no_leaks();
    }
    let back = sandbox_images(list(images.clone()).await);
    assert_eq!(back.len(), 1, "the sandbox image is back: {back:?}");
    assert!(back[0].pinned);
}

/// By default (`drop_pause_container = true`) a pod that needs no pause
/// process (own network namespace, no shared PID namespace, no sysctls), as
/// kubelet sends most pods, runs without one.
/// crid pins its network, IPC and UTS namespaces; the containers join them,
/// the pod stays ready across a crid restart, and nothing is left after
/// removal. A pod sharing its PID namespace still gets a pause container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_without_pause_container_shares_namespaces_crid_pinned() {
    use std::os::unix::fs::MetadataExt;
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::new().await;
    let pod = env.pod_config_without_shared_pid("nopause");
    let sid = env.run_pod(&pod).await;
    let status = env.pod_status(&sid).await.status.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.unwrap().ip;
    assert_eq!(
        env.containerd_objects(),
        (1, 0),
        "a record for the sandbox's metadata, and no pause task"
    );
    let state_dir = env.crid.state.clone();
    let pin = |kind: &str| state_dir.join(format!("{kind}ns")).join(&sid);
    let inode = |kind: &str| {
        let ino = std::fs::metadata(pin(kind)).expect("pinned").ino();
        format!("{kind}={kind}:[{ino}]")
    };

    env.run(
        &sid,
        &pod,
        in_own_pid_namespace(httpd(&env, "no-pause-here")),
    )
    .await;
    let probe = "echo host=$(hostname); for n in net ipc uts; do echo $n=$(readlink /proc/self/ns/$n); done; echo probed";
    env.run(
        &sid,
        &pod,
        in_own_pid_namespace(env.container_config("probe", &["/bin/sh", "-c", probe])),
    )
    .await;
    let log = std::path::Path::new(&pod.log_directory).join("probe/0.log");
    let out = env.wait_for_file(&log, "probed").await;
    assert!(out.contains("host=nopause"), "{out}");
    for kind in ["net", "ipc", "uts"] {
        assert!(
            out.contains(&inode(kind)),
            "{kind}: {} in\n{out}",
            inode(kind)
        );
    }
    let answer = http_get(&format!("{ip}:8080"));
    assert!(answer.contains("no-pause-here"), "{answer}");
    let stats = env.pod_stats(&sid).await;
    let eth0 = stats.network.unwrap().default_interface.expect("eth0");
    assert!(eth0.rx_bytes.unwrap().value > 0, "{eth0:?}");

    // Recovery reads readiness from the pinned UTS namespace.
    env.crid.restart();
    assert_eq!(
        env.pod_status(&sid).await.status.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    env.stop_pod(&sid).await;
    assert!(!pin("ipc").exists() && !pin("uts").exists());
    env.crid.restart();
    assert_eq!(
        env.pod_status(&sid).await.status.unwrap().state,
        PodSandboxState::SandboxNotready as i32
    );

    // Sharing the PID namespace needs the pause process.
    let mut shared = env.pod_config("shared-pid");
    shared.linux.as_mut().unwrap().security_context = Some(LinuxSandboxSecurityContext {
        namespace_options: Some(NamespaceOption::default()),
        ..Default::default()
    });
    let shared_id = env.run_pod(&shared).await;
    assert_eq!(env.containerd_objects().1, 1, "the pause task");
    assert!(!env.crid.state.join("utsns").join(&shared_id).exists());

    env.remove_all_pods().await;
    env.assert_no_leaks();

    // A failed CNI ADD undoes the pins as well.
    assert_broken_cni_rolls_back(&env, env.pod_config_without_shared_pid("nopause-broken")).await;
}

/// Twenty pods without a pause container, each with a container (which
/// starts the pod's one shim), created and removed: no pin, IP, task or shim
/// is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_pause_created_and_removed_leak_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    for i in 0..20 {
        let pod = env.pod_config_without_shared_pid(&format!("loop{i}"));
        let sid = env.run_pod(&pod).await;
        let app = env.container_config("app", &["sleep", "60"]);
        env.run(&sid, &pod, in_own_pid_namespace(app)).await;
        assert_eq!(env.containerd.shim_pids().len(), 1, "one shim per pod");
        env.stop_and_remove_pod(&sid).await;
    }
    env.assert_no_leaks();
    assert_shims_exit(&env).await;
}

/// kubelet restarting the only container of a pod without a pause
/// container: the container exits, RemoveContainer deletes its task and the
/// pod's shim goes with it; the next attempt starts a new shim in the same
/// pinned namespaces (same IP and hostname, reachable, exec works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_without_pause_restarts_its_only_container() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let pod = env.pod_config_without_shared_pid("restarts");
    let sid = env.run_pod(&pod).await;
    let ip = env.pod_ip(&sid).await;
    let exits = env.container_config("web", &["/bin/sh", "-c", "exit 3"]);
    let first = env.run(&sid, &pod, in_own_pid_namespace(exits)).await;
    assert_eq!(env.wait_exited(&first).await.exit_code, 3);
    let mut rt = env.rt().await;
    rt.remove_container(RemoveContainerRequest {
        container_id: first.clone(),
    })
    .await
    .expect("RemoveContainer");
    assert_shims_exit(&env).await;

    let mut again = httpd(&env, "second-attempt");
    again.metadata.as_mut().unwrap().attempt = 1;
    again.log_path = "web/1.log".into();
    let second = env.run(&sid, &pod, in_own_pid_namespace(again)).await;
    assert_eq!(env.containerd.shim_pids().len(), 1, "a new shim");
    let answer = http_get(&format!("{ip}:8080"));
    assert!(answer.contains("second-attempt"), "{answer}");
    let out = rt
        .exec_sync(ExecSyncRequest {
            container_id: second.clone(),
            cmd: vec!["hostname".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(out.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "restarts");
    assert_eq!(
        env.pod_status(&sid).await.status.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// A shim exits once its last task is deleted (bounded wait: 10 s).
async fn assert_shims_exit(env: &PodEnv) {
    for _ in 0..100 {
        if env.containerd.shim_pids().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(env.containerd.shim_pids(), Vec::<u32>::new(), "shims left");
}

/// `drop_pause_container = false`: every pod gets a pause container, as
/// containerd's CRI plugin and cri-dockerd run them, the one kubelet sends
/// without `shareProcessNamespace` too; nothing is pinned by crid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_container_for_every_pod_when_asked() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::with_options(CridOptions {
        config_toml: Some("drop_pause_container = false\n".into()),
        ..Default::default()
    })
    .await;
    let pod = env.pod_config_without_shared_pid("with-pause");
    let sid = env.run_pod(&pod).await;
    assert_eq!(
        env.containerd_objects(),
        (1, 1),
        "the pause container and task"
    );
    for kind in ["ipcns", "utsns"] {
        assert!(
            !env.crid.state.join(kind).join(&sid).exists(),
            "{kind} pinned"
        );
    }
    let app = env.container_config("app", &["sleep", "60"]);
    env.run(&sid, &pod, in_own_pid_namespace(app)).await;
    assert_eq!(env.containerd.shim_pids().len(), 1, "one shim per pod");
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}
