//! Unit tests of the CRI input checks.

use super::*;

#[test]
fn qualified_names_follow_kubernetes() {
    for ok in [
        "app",
        "io.kubernetes.pod.name",
        "kubernetes.io/config.seen",
        "a-b_c.d",
    ] {
        qualified_name("k", ok).unwrap();
    }
    for bad in [
        "",
        "-a",
        "a-",
        "/a",
        "a/",
        "a b",
        "x/y/z!",
        &"a".repeat(64),
        "a\0",
    ] {
        assert!(qualified_name("k", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn ids_are_hex_prefixes() {
    id("container_id", "abc123").unwrap();
    assert!(id("container_id", "").is_err());
    assert!(id("container_id", "../etc").is_err());
    assert!(id("container_id", &"a".repeat(65)).is_err());
}

#[test]
fn sysctls_must_be_namespaced_and_not_host() {
    sysctl("net.ipv4.ip_forward", "1", false, false).unwrap();
    sysctl("kernel.shm_rmid_forced", "1", false, false).unwrap();
    assert!(sysctl("net.ipv4.ip_forward", "1", true, false).is_err());
    assert!(sysctl("kernel.hostname", "x", false, false).is_err());
    assert!(sysctl("vm.swappiness", "1", false, false).is_err());
    assert!(sysctl("net/../../x", "1", false, false).is_err());
    assert!(sysctl("net.core.somaxconn", "1\n2", false, false).is_err());
}

#[test]
fn absurd_resources_are_rejected_naming_the_field() {
    let r = LinuxContainerResources {
        cpu_shares: 262_145,
        ..Default::default()
    };
    let e = resources("config.linux.resources", &r).unwrap_err();
    assert!(e.to_string().contains("cpu_shares"), "{e}");
    let r = LinuxContainerResources {
        memory_limit_in_bytes: 4096,
        ..Default::default()
    };
    assert!(resources("r", &r).is_err());
    resources("r", &LinuxContainerResources::default()).unwrap();
}

#[test]
fn paths_must_be_absolute_without_dotdot_or_nul() {
    abs_path("p", "/var/log/pods/x").unwrap();
    for bad in ["rel", "/a/../b", "/a\0b", "/a\nb"] {
        assert!(abs_path("p", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn run_as_group_needs_a_user() {
    use crate::cri::{
        ContainerConfig, Int64Value, LinuxContainerConfig, LinuxContainerSecurityContext,
    };
    let with = |user: Option<i64>, name: &str| ContainerConfig {
        metadata: Some(crate::cri::ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(crate::cri::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                run_as_user: user.map(|value| Int64Value { value }),
                run_as_username: name.into(),
                run_as_group: Some(Int64Value { value: 1002 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = container_config(&with(None, "")).unwrap_err();
    assert!(e.to_string().contains("run_as_group"), "{e}");
    container_config(&with(Some(1000), "")).unwrap();
    container_config(&with(None, "www-data")).unwrap();
}

#[test]
fn user_namespaces_of_the_node_or_of_the_pod_with_one_mapping_of_root_only() {
    use crate::cri::{IdMapping, UserNamespace};
    let map = |container_id, host_id, length| IdMapping {
        container_id,
        host_id,
        length,
    };
    let with = |mode: NamespaceMode, uids: Vec<IdMapping>, gids: Vec<IdMapping>| NamespaceOption {
        userns_options: Some(UserNamespace {
            mode: mode as i32,
            uids,
            gids,
        }),
        ..Default::default()
    };
    let ok = |m: Vec<IdMapping>| with(NamespaceMode::Pod, m.clone(), m);
    user_namespace("f", None).unwrap();
    user_namespace("f", Some(&NamespaceOption::default())).unwrap();
    user_namespace("f", Some(&with(NamespaceMode::Node, vec![], vec![]))).unwrap();
    user_namespace("f", Some(&ok(vec![map(0, 1000, 100_000)]))).unwrap();
    let code = |n: NamespaceOption| user_namespace("f", Some(&n)).unwrap_err().code();
    let invalid = tonic::Code::InvalidArgument;
    assert_eq!(
        code(with(NamespaceMode::Container, vec![], vec![])),
        invalid
    );
    assert_eq!(code(with(NamespaceMode::Target, vec![], vec![])), invalid);
    let two = vec![map(0, 1000, 100_000), map(0, 2000, 100_000)];
    assert_eq!(code(ok(two)), invalid, "more than one mapping");
    assert_eq!(code(ok(vec![map(1, 1000, 100_000)])), invalid, "0 unmapped");
    assert_eq!(code(ok(vec![])), invalid, "no mapping");
    assert_eq!(code(ok(vec![map(0, 1000, 0)])), invalid, "empty range");
    assert_eq!(code(ok(vec![map(0, u32::MAX, 2)])), invalid, "wraps");
    let gid_only = with(
        NamespaceMode::Pod,
        vec![map(0, 1000, 10)],
        vec![map(1, 1000, 10)],
    );
    assert_eq!(code(gid_only), invalid, "gids checked too");
    let mut host_net = ok(vec![map(0, 1000, 100_000)]);
    host_net.network = NamespaceMode::Node as i32;
    assert_eq!(code(host_net), invalid, "with the host network");
}
