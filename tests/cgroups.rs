//! Limits the node's cgroups cannot apply (issue 28): kubelet puts hugepage
//! limits of 0 for every page size on every container, also on nodes whose
//! runc has no hugetlb controller to apply them with (a hybrid host with
//! hugetlb in the unified hierarchy only). crid leaves such limits out by
//! default and keeps them where the controller is; with
//! `missing_cgroup_controllers = "refuse"` it refuses them, changing nothing.

mod support;

use crid::cri::*;
use crid::util::platform::cgroups::{Cgroups, Controller, Mode};
use support::pod::{kubelet_hugepage_limits, PodEnv};
use support::*;

/// `linux.resources` of a container's (or pause container's) OCI spec,
/// as containerd stores it.
fn spec_resources(env: &PodEnv, id: &str) -> serde_json::Value {
    let info: serde_json::Value =
        serde_json::from_str(&env.containerd.ctr(&["containers", "info", id])).unwrap();
    info["Spec"]["linux"]["resources"].clone()
}

/// The hugepage limits a spec should carry: kubelet's where the node has
/// the controller, none where it has not.
fn expected_hugepage_limits() -> serde_json::Value {
    if !Cgroups::host().has(Controller::Hugetlb) {
        return serde_json::Value::Null;
    }
    kubelet_hugepage_limits()
        .iter()
        .map(|h| serde_json::json!({"pageSize": h.page_size, "limit": 0}))
        .collect()
}

#[test]
fn page_sizes_are_named_as_kubelet_names_them() {
    use support::pod::hugepage_size_name;
    assert_eq!(hugepage_size_name(2048 * 1024), "2MB");
    assert_eq!(hugepage_size_name(1048576 * 1024), "1GB");
    assert_eq!(hugepage_size_name(64 * 1024), "64KB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_hugepage_limits_start_and_update_on_this_node() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let limits = kubelet_hugepage_limits();
    eprintln!(
        "node: {:?}, hugetlb {}, page sizes {:?}",
        Cgroups::host().mode,
        Cgroups::host().has(Controller::Hugetlb),
        limits.iter().map(|h| &h.page_size).collect::<Vec<_>>()
    );
    // The pod's own resources too, on its pause container.
    let mut pod = env.pod_config("hugepages");
    pod.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        cpu_shares: 2,
        memory_limit_in_bytes: 256 << 20,
        hugepage_limits: limits.clone(),
        ..Default::default()
    });
    let sid = env.run_pod(&pod).await;
    assert_eq!(
        spec_resources(&env, &sid)["hugepageLimits"],
        expected_hugepage_limits()
    );

    // `container_config` sends kubelet's hugepage limits; add its usual cpu
    // and memory ones.
    let mut cfg = env.container_config("c", &["sleep", "3600"]);
    let resources = cfg.linux.as_mut().unwrap().resources.as_mut().unwrap();
    assert_eq!(resources.hugepage_limits, limits);
    resources.cpu_shares = 2;
    resources.cpu_period = 100_000;
    resources.cpu_quota = 50_000;
    resources.memory_limit_in_bytes = 64 << 20;
    let cid = env.run(&sid, &pod, cfg).await;
    assert_eq!(
        env.status(&cid).await.state,
        ContainerState::ContainerRunning as i32
    );
    let res = spec_resources(&env, &cid);
    assert_eq!(res["hugepageLimits"], expected_hugepage_limits(), "{res}");
    assert_eq!(res["memory"]["limit"], 64 << 20, "{res}");
    assert_eq!(res["cpu"]["quota"], 50_000, "{res}");
    let swap = &res["memory"]["swap"];
    if Cgroups::host().has(Controller::MemorySwap) {
        assert_eq!(*swap, 64 << 20, "{res}");
    } else {
        assert!(swap.is_null(), "{res}");
    }

    let update = LinuxContainerResources {
        cpu_shares: 4,
        cpu_period: 100_000,
        cpu_quota: 60_000,
        memory_limit_in_bytes: 96 << 20,
        hugepage_limits: limits.clone(),
        ..Default::default()
    };
    env.rt()
        .await
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: cid.clone(),
            linux: Some(update.clone()),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources with kubelet's hugepage limits");
    let st = env.status(&cid).await;
    assert_eq!(st.state, ContainerState::ContainerRunning as i32);
    assert_eq!(st.resources.unwrap().linux.unwrap(), update);

    if !Cgroups::host().has(Controller::Hugetlb) {
        let log = env.crid.log();
        let said = log.matches("hugepage limits dropped").count();
        assert_eq!(said, 1, "logged once:\n{log}");
    }
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// What to ask for that this node's cgroups cannot apply, if anything the
/// CRI can ask for is missing: (resources, what the error names).
fn unapplicable_request() -> Option<(LinuxContainerResources, &'static str)> {
    let node = Cgroups::host();
    let unified = |key: &str| LinuxContainerResources {
        unified: [(key.to_string(), "max".to_string())].into(),
        ..Default::default()
    };
    if !node.has(Controller::Hugetlb) {
        Some((
            LinuxContainerResources {
                hugepage_limits: kubelet_hugepage_limits(),
                ..Default::default()
            },
            "hugetlb controller",
        ))
    } else if node.mode != Mode::V2 {
        Some((unified("memory.high"), "cgroup v2"))
    } else if !node.has(Controller::Rdma) {
        Some((unified("rdma.max"), "rdma controller"))
    } else if !node.has(Controller::Misc) {
        Some((unified("misc.max"), "misc controller"))
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_fails_with_failed_precondition_and_leaves_nothing() {
    if missing_tools() {
        return;
    }
    let Some((asked, names)) = unapplicable_request() else {
        eprintln!("SKIP: this node's cgroups apply everything the CRI can ask for");
        return;
    };
    let env = PodEnv::with_options(CridOptions {
        config_toml: Some("missing_cgroup_controllers = \"refuse\"\n".into()),
        ..Default::default()
    })
    .await;
    let mut rt = env.rt().await;
    let is_refusal = |e: tonic::Status, field: &str| {
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        assert!(
            e.message().contains(field) && e.message().contains(names),
            "{e:?}"
        );
    };

    let mut pod = env.pod_config("refused");
    pod.linux.as_mut().unwrap().resources = Some(asked.clone());
    let err = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    is_refusal(err, "config.linux.resources");
    env.assert_no_leaks();

    // Without them the pod runs; a container asking for them is refused.
    pod.linux.as_mut().unwrap().resources = None;
    let sid = env.run_pod(&pod).await;
    let mut cfg = env.container_config("c", &["sleep", "3600"]);
    cfg.linux.as_mut().unwrap().resources = Some(asked.clone());
    let err = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sid.clone(),
            config: Some(cfg.clone()),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    is_refusal(err, "config.linux.resources");
    let listed = rt
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(
        env.containerd_objects().0,
        1,
        "the pod's pause container only"
    );

    // A running container: the update is refused and not recorded.
    let kept = LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        ..Default::default()
    };
    cfg.linux.as_mut().unwrap().resources = Some(kept.clone());
    let cid = env.run(&sid, &pod, cfg).await;
    let err = rt
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: cid.clone(),
            linux: Some(asked.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    is_refusal(err, "linux.");
    let st = env.status(&cid).await;
    assert_eq!(st.state, ContainerState::ContainerRunning as i32);
    assert_eq!(st.resources.unwrap().linux.unwrap(), kept);

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}
