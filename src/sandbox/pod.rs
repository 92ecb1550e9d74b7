//! What a pod's CRI config asks of the node: which namespaces it shares
//! with the host, whether it needs a pause process, and the CNI request
//! for its network. Pure.

use crate::cri::PodSandboxConfig;
use crate::network::cni::{PodNetwork, PortMapping};
use crate::sandbox::store::SandboxMetadata;

pub fn host_network(config: &PodSandboxConfig) -> bool {
    use crate::cri::NamespaceMode;
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|n| n.network == NamespaceMode::Node as i32)
}

pub fn host_ipc(config: &PodSandboxConfig) -> bool {
    use crate::cri::NamespaceMode;
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|n| n.ipc == NamespaceMode::Node as i32)
}

/// Whether a pod needs a pause process: to be PID 1 of a shared PID
/// namespace, to apply sysctls through runc, to hold the UTS namespace of
/// a host-network pod (which crid does not pin), or because its runtime
/// does not run on the host's kernel (a VM runtime such as Kata builds the pod's
/// sandbox around the pause container; CRI-O keeps its infra container for
/// those too). Otherwise crid can pin the pod's namespaces itself
/// (`drop_pause_container`).
pub fn needs_pause(config: &PodSandboxConfig, handler: &crate::config::RuntimeHandler) -> bool {
    use crate::cri::NamespaceMode;
    let linux = config.linux.as_ref();
    let pid = linux
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map_or(NamespaceMode::Pod as i32, |n| n.pid);
    let sysctls = linux.is_some_and(|l| !l.sysctls.is_empty());
    host_network(config)
        || pid == NamespaceMode::Pod as i32
        || sysctls
        || !handler.runs_on_host_kernel()
}

pub fn pod_network(meta: &SandboxMetadata) -> Option<PodNetwork> {
    let netns = meta.netns_path.clone()?;
    Some(PodNetwork {
        id: meta.id.clone(),
        netns,
        name: meta.name().to_string(),
        namespace: meta.namespace().to_string(),
        uid: meta.uid().to_string(),
        port_mappings: meta
            .config
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| PortMapping {
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: match p.protocol {
                    1 => "udp",
                    2 => "sctp",
                    _ => "tcp",
                }
                .to_string(),
                host_ip: p.host_ip.clone(),
            })
            .collect(),
        annotations: meta.config.annotations.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::needs_pause;

    use crate::config::RuntimeHandler;
    use crate::cri::*;

    /// A pod as kubelet sends one: own network, PID namespace per
    /// container unless `shareProcessNamespace`.
    fn pod(network: NamespaceMode, pid: NamespaceMode) -> PodSandboxConfig {
        PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: network as i32,
                        pid: pid as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_pods_that_need_a_pause_process_get_one() {
        let runc = RuntimeHandler::default();
        let plain = pod(NamespaceMode::Pod, NamespaceMode::Container);
        assert!(!needs_pause(&plain, &runc));
        let crun = RuntimeHandler {
            binary_name: "crun".into(),
            ..Default::default()
        };
        assert!(!needs_pause(&plain, &crun), "crun runs on the runc shim");

        // shareProcessNamespace: the pause process is the pod's PID 1.
        assert!(needs_pause(
            &pod(NamespaceMode::Pod, NamespaceMode::Pod),
            &runc
        ));
        // No security context: CRI's default is a shared PID namespace.
        assert!(needs_pause(&PodSandboxConfig::default(), &runc));
        assert!(needs_pause(
            &pod(NamespaceMode::Node, NamespaceMode::Container),
            &runc
        ));
        let mut sysctls = plain.clone();
        sysctls
            .linux
            .as_mut()
            .unwrap()
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "1".into());
        assert!(needs_pause(&sysctls, &runc));
        let vm = RuntimeHandler {
            runtime_type: "io.containerd.kata.v2".into(),
            ..Default::default()
        };
        assert!(needs_pause(&plain, &vm), "a VM runtime builds its sandbox");
    }
}
