use super::*;
use crate::cri::{
    ContainerMetadata, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, Mount as CriMount, NamespaceOption,
};
use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};

fn image() -> ImageConfiguration {
    ImageConfigurationBuilder::default()
        .config(
            ConfigBuilder::default()
                .entrypoint(vec!["/app".to_string()])
                .cmd(vec!["serve".to_string()])
                .user("www")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn config(sc: LinuxContainerSecurityContext) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        annotations: [("user/ann".to_string(), "v".to_string())].into(),
        mounts: vec![CriMount {
            container_path: "/etc/hosts".into(),
            host_path: "/mine".into(),
            ..Default::default()
        }],
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                oom_score_adj: -999,
                memory_limit_in_bytes: 1 << 20,
                ..Default::default()
            }),
            security_context: Some(sc),
        }),
        ..Default::default()
    }
}

fn sandbox() -> PodSandboxConfig {
    PodSandboxConfig {
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods/p1".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn build(cfg: &ContainerConfig) -> Result<Spec> {
    build_in(cfg, 42, None, None)
}

/// With `seccomp_default_when_empty` set to `default_when_empty`.
fn build_seccomp(cfg: &ContainerConfig, default_when_empty: bool) -> Result<Spec> {
    build_with(cfg, 42, None, None, default_when_empty, None)
}

/// In a pod whose pause process is `sandbox_pid` (0: none), with the
/// `ipc`/`uts` namespaces a pod without a pause container pinned.
fn build_in(
    cfg: &ContainerConfig,
    sandbox_pid: u32,
    ipc: Option<&Path>,
    uts: Option<&Path>,
) -> Result<Spec> {
    build_with(cfg, sandbox_pid, ipc, uts, false, None)
}

fn build_with(
    cfg: &ContainerConfig,
    sandbox_pid: u32,
    ipc: Option<&Path>,
    uts: Option<&Path>,
    seccomp_default_when_empty: bool,
    userns: Option<(&Path, crate::network::userns::PodUserns)>,
) -> Result<Spec> {
    let img = image();
    let sb = sandbox();
    container_spec(&ContainerSpecInput {
        id: "c1",
        sandbox_id: "sb1",
        config: cfg,
        sandbox_config: &sb,
        image: &img,
        image_name: "docker.io/library/app:1",
        etc_passwd: Some("www:x:33:34::/:/bin/sh\n"),
        etc_group: Some("www:x:34:\n"),
        sandbox_pid,
        ipc_ns_path: ipc,
        uts_ns_path: uts,
        netns_path: Some(Path::new("/run/netns/p1")),
        target_pid: None,
        userns,
        sandbox_files: SandboxFiles {
            hostname: Some(Path::new("/sb/hostname")),
            hosts: Some(Path::new("/sb/hosts")),
            resolv_conf: Some(Path::new("/sb/resolv.conf")),
            shm: Some(Path::new("/sb/shm")),
        },
        termination_message: None,
        devices: &[],
        cgroup_driver: "cgroupfs",
        oom_score_adj_min: 0,
        cgroups: &crate::util::platform::cgroups::Cgroups::everything(),
        seccomp_localhost_profile: None,
        seccomp_default_when_empty,
        apparmor_enabled: false,
        recursive_read_only_mounts: true,
    })
}

/// The path a spec's namespace of type `t` joins (None: a new one, or none).
fn namespace_path(s: &Spec, t: LinuxNamespaceType) -> Option<std::path::PathBuf> {
    s.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == t)
        .and_then(|n| n.path().clone())
}

#[test]
fn default_container_spec_fields() {
    let s = build(&config(Default::default())).unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/app", "serve"]);
    assert_eq!((p.user().uid(), p.user().gid()), (33, 34));
    assert_eq!(p.oom_score_adj(), Some(0), "clamped to oom_score_adj_min");
    assert_eq!(
        p.capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len(),
        14
    );
    let l = s.linux().as_ref().unwrap();
    assert_eq!(
        l.cgroups_path().as_deref(),
        Some(Path::new("/kubepods/p1/crid-c1"))
    );
    let path = |t| namespace_path(&s, t);
    assert_eq!(
        path(LinuxNamespaceType::Network),
        Some("/run/netns/p1".into())
    );
    assert_eq!(
        path(LinuxNamespaceType::Ipc),
        Some("/proc/42/ns/ipc".into())
    );
    assert_eq!(
        path(LinuxNamespaceType::Uts),
        Some("/proc/42/ns/uts".into())
    );
    assert_eq!(
        path(LinuxNamespaceType::Pid),
        Some("/proc/42/ns/pid".into())
    );
    assert!(l.seccomp().is_none(), "unconfined when unset");
    assert!(l
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert_eq!(
        l.resources()
            .as_ref()
            .unwrap()
            .memory()
            .as_ref()
            .unwrap()
            .limit(),
        Some(1 << 20)
    );
    let hosts = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/etc/hosts"))
        .unwrap();
    assert_eq!(
        hosts.source().as_deref(),
        Some(Path::new("/mine")),
        "CRI mount overrides sandbox file"
    );
    let a = s.annotations().as_ref().unwrap();
    assert_eq!(a[ANN_CONTAINER_TYPE], "container");
    assert_eq!(a[ANN_SANDBOX_ID], "sb1");
    assert_eq!(a["io.kubernetes.cri.container-name"], "app");
    assert_eq!(a["io.kubernetes.cri.image-name"], "docker.io/library/app:1");
    assert_eq!(a["user/ann"], "v");
}

#[test]
fn a_pod_without_pause_has_its_pinned_ipc_and_uts_joined() {
    let s = build_in(
        &config(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Container as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        0,
        Some(Path::new("/run/crid/ipcns/p1")),
        Some(Path::new("/run/crid/utsns/p1")),
    )
    .unwrap();
    let path = |t| namespace_path(&s, t);
    assert_eq!(
        path(LinuxNamespaceType::Ipc),
        Some("/run/crid/ipcns/p1".into())
    );
    assert_eq!(
        path(LinuxNamespaceType::Uts),
        Some("/run/crid/utsns/p1".into())
    );
    assert_eq!(
        path(LinuxNamespaceType::Network),
        Some("/run/netns/p1".into())
    );
    assert_eq!(path(LinuxNamespaceType::Pid), None, "a new PID namespace");
}

#[test]
fn pod_pid_namespace_needs_a_pause_process() {
    let mut cfg = config(Default::default());
    let sc = cfg
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    sc.namespace_options = Some(NamespaceOption {
        pid: NamespaceMode::Pod as i32,
        ..Default::default()
    });
    assert!(matches!(
        build_in(&cfg, 0, None, None),
        Err(Error::FailedPrecondition(_))
    ));
}

#[test]
fn pid_namespace_modes_and_privileged_needs_privileged_sandbox() {
    let sc = |pid: NamespaceMode| LinuxContainerSecurityContext {
        namespace_options: Some(NamespaceOption {
            pid: pid as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let pid_ns = |s: &Spec| {
        s.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Pid)
            .cloned()
    };
    let s = build(&config(sc(NamespaceMode::Container))).unwrap();
    assert_eq!(pid_ns(&s).unwrap().path(), &None);
    let s = build(&config(sc(NamespaceMode::Node))).unwrap();
    assert!(pid_ns(&s).is_none());
    assert!(matches!(
        build(&config(sc(NamespaceMode::Target))),
        Err(Error::InvalidArgument(_))
    ));
    let priv_sc = LinuxContainerSecurityContext {
        privileged: true,
        ..Default::default()
    };
    assert!(matches!(
        build(&config(priv_sc)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
#[allow(deprecated)] // seccomp_profile_path: still sent by older kubelets
fn no_seccomp_profile_is_unconfined_unless_default_when_empty() {
    use crate::cri::{security_profile::ProfileType, SecurityProfile};
    let seccomp_of = |seccomp: Option<SecurityProfile>, legacy: &str, when_empty: bool| {
        let cfg = config(LinuxContainerSecurityContext {
            seccomp,
            seccomp_profile_path: legacy.into(),
            ..Default::default()
        });
        let s = build_seccomp(&cfg, when_empty).unwrap();
        s.linux().as_ref().unwrap().seccomp().clone()
    };
    let asked = |t: ProfileType| {
        Some(SecurityProfile {
            profile_type: t as i32,
            localhost_ref: String::new(),
        })
    };
    // Nothing asked for: unconfined, as the CRI and containerd read it.
    assert_eq!(seccomp_of(None, "", false), None);
    // `seccomp_default_when_empty = true`: the default profile.
    let p = seccomp_of(None, "", true).expect("RuntimeDefault");
    assert_eq!(
        p.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    // What is asked for wins either way.
    for when_empty in [false, true] {
        assert!(seccomp_of(asked(ProfileType::RuntimeDefault), "", when_empty).is_some());
        assert!(seccomp_of(None, "runtime/default", when_empty).is_some());
        assert_eq!(
            seccomp_of(asked(ProfileType::Unconfined), "", when_empty),
            None
        );
        assert_eq!(seccomp_of(None, "unconfined", when_empty), None);
    }
}

/// A pod of its own user namespace: its containers join the pinned one
/// (first, so the namespaces made after belong to it) and carry the
/// pod's mappings; others get neither.
#[test]
fn containers_join_the_pods_user_namespace_with_its_mappings() {
    let userns = crate::network::userns::PodUserns::for_tests();
    let cfg = config(LinuxContainerSecurityContext::default());
    let pin = Path::new("/state/userns/sb1");
    let s = build_with(&cfg, 42, None, None, false, Some((pin, userns))).unwrap();
    let linux = s.linux().as_ref().unwrap();
    let first = &linux.namespaces().as_ref().unwrap()[0];
    assert_eq!(first.typ(), LinuxNamespaceType::User);
    assert_eq!(first.path().as_deref(), Some(pin));
    let m = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        let [m] = v.as_deref().unwrap() else {
            panic!("one mapping: {v:?}")
        };
        (m.container_id(), m.host_id(), m.size())
    };
    assert_eq!(m(linux.uid_mappings()), (0, 100_000, 65536));
    assert_eq!(m(linux.gid_mappings()), (0, 200_000, 65536));

    let s = build(&cfg).unwrap();
    let linux = s.linux().as_ref().unwrap();
    assert_eq!(namespace_path(&s, LinuxNamespaceType::User), None);
    assert!(!linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User));
    assert!(linux.uid_mappings().is_none() && linux.gid_mappings().is_none());
}
