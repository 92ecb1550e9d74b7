use super::*;
use crate::cri::{
    Int64Value, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceOption,
    PodSandboxMetadata,
};
use crate::util::platform::cgroups::{Cgroups, Controller, Mode};
use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};

fn image() -> ImageConfiguration {
    ImageConfigurationBuilder::default()
        .config(
            ConfigBuilder::default()
                .entrypoint(vec!["/pause".to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn config(network: NamespaceMode) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web".into(),
            uid: "u1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web-0".into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods/pod-u1".into(),
            sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network as i32,
                    ..Default::default()
                }),
                run_as_user: Some(Int64Value { value: 65535 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn spec(cfg: &PodSandboxConfig, netns: Option<&Path>, driver: &str) -> Result<Spec> {
    spec_of(cfg, netns, driver, false, false, &Cgroups::everything())
}

fn spec_of(
    cfg: &PodSandboxConfig,
    netns: Option<&Path>,
    driver: &str,
    pause_program: bool,
    seccomp_default_when_empty: bool,
    cgroups: &Cgroups,
) -> Result<Spec> {
    let img = image();
    sandbox_spec(&SandboxSpecInput {
        id: "sb1",
        config: cfg,
        image: &img,
        netns_path: netns,
        hostname_path: Path::new("/sb/hostname"),
        hosts_path: Path::new("/sb/hosts"),
        resolv_path: Path::new("/sb/resolv.conf"),
        shm_path: Some(Path::new("/sb/shm")),
        userns: None,
        cgroup_driver: driver,
        oom_score_adj_min: 0,
        cgroups,
        pause_program,
        seccomp_default_when_empty,
    })
}

#[test]
fn pod_network_sandbox_spec() {
    let s = spec(
        &config(NamespaceMode::Pod),
        Some(Path::new("/run/netns/x")),
        "cgroupfs",
    )
    .unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/pause"]);
    assert_eq!(p.user().uid(), 65535);
    assert_eq!(
        p.oom_score_adj(),
        Some(0),
        "-998 clamped to the allowed minimum"
    );
    assert_eq!(s.hostname().as_deref(), Some("web-0"));
    let l = s.linux().as_ref().unwrap();
    assert_eq!(
        l.cgroups_path().as_deref(),
        Some(Path::new("/kubepods/pod-u1/crid-sb1"))
    );
    let net = l
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/x")));
    assert_eq!(l.sysctl().as_ref().unwrap()["net.ipv4.ip_forward"], "1");
    assert!(l.seccomp().is_none(), "no profile asked for: unconfined");
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    let a = s.annotations().as_ref().unwrap();
    assert_eq!(a[ANN_CONTAINER_TYPE], "sandbox");
    assert_eq!(a["io.kubernetes.cri.sandbox-name"], "web");
    assert_eq!(a["io.kubernetes.cri.sandbox-namespace"], "default");
    assert_eq!(a["io.kubernetes.cri.sandbox-uid"], "u1");
    let dests: Vec<_> = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    assert!(dests.contains(&"/etc/resolv.conf".into()) && dests.contains(&"/dev/shm".into()));
}

/// kubelet's hugepage limits of 0 on the pod: kept where the node has the
/// hugetlb controller, left out (with swap) on a hybrid node whose v1
/// hierarchies lack it, on either cgroup driver; the memory limit stays.
#[test]
fn pod_limits_the_node_cannot_apply_are_left_out_on_both_drivers() {
    let mut cfg = config(NamespaceMode::Node);
    let linux = cfg.linux.as_mut().unwrap();
    linux.cgroup_parent = "kubepods-pod1.slice".into();
    linux.resources = Some(crate::cri::LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        hugepage_limits: vec![crate::cri::HugepageLimit {
            page_size: "2MB".into(),
            limit: 0,
        }],
        ..Default::default()
    });
    let hybrid = Cgroups::only(Mode::Hybrid, &[Controller::CpuQuota], &[]);
    for driver in ["cgroupfs", "systemd"] {
        let resources = |node: &Cgroups| {
            let s = spec_of(&cfg, None, driver, false, false, node).unwrap();
            s.linux().as_ref().unwrap().resources().clone().unwrap()
        };
        let kept = resources(&Cgroups::everything());
        let hp = kept.hugepage_limits().as_ref().unwrap();
        assert_eq!((hp[0].page_size().as_str(), hp[0].limit()), ("2MB", 0));
        let fitted = resources(&hybrid);
        assert!(fitted.hugepage_limits().is_none(), "{driver}");
        let mem = fitted.memory().as_ref().unwrap();
        assert_eq!(
            (mem.limit(), mem.swap()),
            (Some(64 << 20), None),
            "{driver}"
        );
    }
}

#[test]
fn host_network_has_no_net_namespace_and_systemd_path() {
    let s = spec(&config(NamespaceMode::Node), None, "systemd");
    assert!(s.is_err(), "/kubepods/pod-u1 is not a slice");
    let mut cfg = config(NamespaceMode::Node);
    cfg.linux.as_mut().unwrap().cgroup_parent = "kubepods-pod1.slice".into();
    let s = spec(&cfg, None, "systemd").unwrap();
    let l = s.linux().as_ref().unwrap();
    assert_eq!(
        l.cgroups_path().as_deref(),
        Some(Path::new("kubepods-pod1.slice:crid:sb1"))
    );
    assert!(!l
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network));
    assert!(
        spec(&config(NamespaceMode::Pod), None, "cgroupfs").is_err(),
        "pod network needs a netns"
    );
}

#[test]
fn resolv_conf_from_dns_config_or_host() {
    let d = DnsConfig {
        servers: vec!["10.0.0.10".into()],
        searches: vec!["ns.svc".into(), "svc".into()],
        options: vec!["ndots:5".into()],
    };
    assert_eq!(
        resolv_conf(Some(&d), "host"),
        "search ns.svc svc\nnameserver 10.0.0.10\noptions ndots:5\n"
    );
    assert_eq!(
        resolv_conf(None, "nameserver 1.1.1.1\n"),
        "nameserver 1.1.1.1\n"
    );
    assert_eq!(resolv_conf(Some(&DnsConfig::default()), "h"), "h");
}

#[test]
fn hosts_file_names_the_pod() {
    let h = hosts_file("web-0", Some("10.1.0.5"));
    assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
    assert!(h.ends_with("10.1.0.5\tweb-0\n"));
}

#[test]
fn crids_pause_program_gets_its_own_profile_for_runtime_default() {
    use crate::cri::{security_profile::ProfileType as SecurityProfileType, SecurityProfile};
    let netns = Some(Path::new("/run/netns/x"));
    let with_when_empty = |seccomp: Option<SecurityProfile>,
                           privileged: bool,
                           pause_program: bool,
                           when_empty: bool| {
        let mut cfg = config(NamespaceMode::Pod);
        let sc = cfg.linux.as_mut().and_then(|l| l.security_context.as_mut());
        let sc = sc.unwrap();
        sc.seccomp = seccomp;
        sc.privileged = privileged;
        let s = spec_of(
            &cfg,
            netns,
            "cgroupfs",
            pause_program,
            when_empty,
            &Cgroups::everything(),
        )
        .unwrap();
        s.linux().as_ref().unwrap().seccomp().clone()
    };
    let with = |seccomp: Option<SecurityProfile>, privileged: bool, pause_program: bool| {
        with_when_empty(seccomp, privileged, pause_program, false)
    };
    let profile = |t: SecurityProfileType| {
        Some(SecurityProfile {
            profile_type: t as i32,
            localhost_ref: String::new(),
        })
    };
    let names = |p: &oci_spec::runtime::LinuxSeccomp| -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect()
    };

    // RuntimeDefault (asked for, or with `seccomp_default_when_empty` when
    // nothing is): the pause program's own list, native architecture only.
    for asked in [profile(SecurityProfileType::RuntimeDefault), None] {
        let p = with_when_empty(asked, false, true, true).expect("a profile");
        assert_eq!(p.architectures(), &None);
        let n = names(&p);
        for needed in ["pause", "wait4", "rt_sigaction", "execve", "exit_group"] {
            assert!(n.contains(&needed.to_string()), "{needed}: {n:?}");
        }
        for refused in ["socket", "clone", "mount", "ptrace", "open_by_handle_at"] {
            assert!(!n.contains(&refused.to_string()), "{refused} allowed");
        }
    }
    // Another sandbox image: the whole default profile, three architectures.
    let full = with(profile(SecurityProfileType::RuntimeDefault), false, false).unwrap();
    assert_eq!(full.architectures().as_ref().map(Vec::len), Some(3));
    assert!(names(&full).contains(&"socket".to_string()));
    // Nothing asked for: unconfined, as containerd's CRI runs the pause
    // container; the whole default profile with `seccomp_default_when_empty`
    // for another sandbox image.
    assert_eq!(with(None, false, true), None);
    assert_eq!(with(None, false, false), None);
    let full_when_empty = with_when_empty(None, false, false, true).unwrap();
    assert_eq!(
        full_when_empty.architectures().as_ref().map(Vec::len),
        Some(3)
    );
    // Unconfined and privileged sandboxes stay unconfined.
    assert_eq!(
        with(profile(SecurityProfileType::Unconfined), false, true),
        None
    );
    assert_eq!(
        with(profile(SecurityProfileType::RuntimeDefault), true, true),
        None
    );
}

/// A pod of its own user namespace: the pause container joins the pinned
/// one before it makes its other namespaces (which it then owns), with the
/// pod's mappings.
#[test]
fn the_pause_container_joins_the_pods_user_namespace() {
    use crate::network::userns::{IdMap, PodUserns};
    let map = IdMap {
        container_id: 0,
        host_id: 100_000,
        size: 65536,
    };
    let img = image();
    let cfg = config(NamespaceMode::Pod);
    let pin = Path::new("/state/userns/sb1");
    let s = sandbox_spec(&SandboxSpecInput {
        id: "sb1",
        config: &cfg,
        image: &img,
        netns_path: Some(Path::new("/run/netns/x")),
        hostname_path: Path::new("/sb/hostname"),
        hosts_path: Path::new("/sb/hosts"),
        resolv_path: Path::new("/sb/resolv.conf"),
        shm_path: Some(Path::new("/sb/shm")),
        userns: Some((
            pin,
            PodUserns {
                uids: map,
                gids: map,
            },
        )),
        cgroup_driver: "cgroupfs",
        oom_score_adj_min: 0,
        cgroups: &Cgroups::everything(),
        pause_program: false,
        seccomp_default_when_empty: false,
    })
    .unwrap();
    let linux = s.linux().as_ref().unwrap();
    let nss = linux.namespaces().as_ref().unwrap();
    assert_eq!(nss[0].typ(), LinuxNamespaceType::User);
    assert_eq!(nss[0].path().as_deref(), Some(pin));
    for t in [LinuxNamespaceType::Ipc, LinuxNamespaceType::Uts] {
        let n = nss.iter().find(|n| n.typ() == t).unwrap();
        assert_eq!(n.path(), &None, "{t:?} is new, made in the user namespace");
    }
    let uids = linux.uid_mappings().as_ref().unwrap();
    assert_eq!(
        (uids[0].container_id(), uids[0].host_id(), uids[0].size()),
        (0, 100_000, 65536)
    );
    assert_eq!(linux.gid_mappings().as_ref().unwrap().len(), 1);
}
