//! Pod user namespaces (`hostUsers: false`) in CRI configs, as kubelet
//! sends them: the mode and mappings of a pod, and containers that name
//! their pod's.

use crid::cri::*;

/// The host range test pods map container id 0 to.
pub const HOST_ID: u32 = 231_072;
pub const SIZE: u32 = 65_536;

/// Container ids from `container_id` on are host ids from `host_id` on.
pub fn mapping(container_id: u32, host_id: u32, length: u32) -> IdMapping {
    IdMapping {
        host_id,
        container_id,
        length,
    }
}

/// POD mode with these mappings.
pub fn pod_mode(uids: Vec<IdMapping>, gids: Vec<IdMapping>) -> UserNamespace {
    UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids,
        gids,
    }
}

/// POD mode, container id 0 at [`HOST_ID`], [`SIZE`] ids.
pub fn pod_userns() -> UserNamespace {
    let m = vec![mapping(0, HOST_ID, SIZE)];
    pod_mode(m.clone(), m)
}

/// Set the pod's user namespace options.
pub fn with_userns(pod: &mut PodSandboxConfig, userns: UserNamespace) {
    let linux = pod.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    let ns = sc.namespace_options.get_or_insert_with(Default::default);
    ns.userns_options = Some(userns);
}

/// A container config that names the pod's user namespace, as kubelet's
/// do (`namespace_options` is the pod's).
pub fn in_pod_userns(mut c: ContainerConfig, pod: &PodSandboxConfig) -> ContainerConfig {
    let pod_ns = pod
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone());
    let sc = c
        .linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default);
    sc.namespace_options = pod_ns;
    c
}
