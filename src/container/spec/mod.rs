//! OCI runtime spec of a (non-sandbox) container, from the CRI config, the
//! image config and facts about the sandbox and host passed in by the caller.
//! Pure: no filesystem access, no syscalls (except `security::stat_device`,
//! a separate helper for the caller).

pub mod cgroup_fit;
pub mod mounts;
pub mod process;
pub mod resources;
pub mod security;
pub mod user;

pub use cgroup_fit::{check_node_applies, fit_to_node};
pub use resources::resources_to_oci;
pub use security::{stat_device, DeviceInfo, SeccompChoice};

use crate::cri::{ContainerConfig, NamespaceMode, PodSandboxConfig};
use crate::error::{Error, Result};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Linux, LinuxNamespace, LinuxNamespaceType, LinuxResources, Process, Root, Spec, User,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Files in the sandbox directory shared by its containers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxFiles<'a> {
    pub hostname: Option<&'a Path>,
    pub hosts: Option<&'a Path>,
    pub resolv_conf: Option<&'a Path>,
    /// The sandbox's /dev/shm; None when the pod uses the host IPC namespace.
    pub shm: Option<&'a Path>,
}

pub struct ContainerSpecInput<'a> {
    pub id: &'a str,
    pub sandbox_id: &'a str,
    pub config: &'a ContainerConfig,
    pub sandbox_config: &'a PodSandboxConfig,
    pub image: &'a ImageConfiguration,
    /// Image reference for the `io.kubernetes.cri.image-name` annotation.
    pub image_name: &'a str,
    /// /etc/passwd and /etc/group of the image rootfs, when present.
    pub etc_passwd: Option<&'a str>,
    pub etc_group: Option<&'a str>,
    /// PID of the sandbox's pause process (its namespaces are joined).
    pub sandbox_pid: u32,
    /// The pod's network namespace file; None = host network.
    pub netns_path: Option<&'a Path>,
    /// Pinned IPC and UTS namespaces of a pod without a pause container;
    /// otherwise the pause process's (`sandbox_pid`) are joined.
    pub ipc_ns_path: Option<&'a Path>,
    pub uts_ns_path: Option<&'a Path>,
    /// The pod's own user namespace (pinned path, mapping); None: the node's.
    pub userns: Option<(&'a Path, crate::network::userns::PodUserns)>,
    /// PID of the target container for NamespaceMode::TARGET.
    pub target_pid: Option<u32>,
    pub sandbox_files: SandboxFiles<'a>,
    /// (host file, container path) of the termination message.
    pub termination_message: Option<(&'a Path, &'a str)>,
    /// `config.devices`, stat'ed by the caller (`stat_device`).
    pub devices: &'a [DeviceInfo],
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: &'a str,
    /// Lowest oom_score_adj crid may set.
    pub oom_score_adj_min: i32,
    /// What the node's cgroups can apply; limits they cannot are left out.
    pub cgroups: &'a crate::util::platform::cgroups::Cgroups,
    /// Text of the Localhost seccomp profile the config names, loaded by the caller.
    pub seccomp_localhost_profile: Option<&'a str>,
    /// `seccomp_default_when_empty`: no profile asked for means
    /// `RuntimeDefault` instead of unconfined.
    pub seccomp_default_when_empty: bool,
    pub apparmor_enabled: bool,
    /// The pod's runtime handler makes read-only mounts read-only
    /// recursively (`rro`) when asked.
    pub recursive_read_only_mounts: bool,
}

pub const ANN_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const ANN_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// cgroups path of a container or sandbox under the pod's cgroup parent:
/// cgroupfs `<parent>/crid-<id>`, systemd `<slice>:crid:<id>`.
pub fn cgroups_path(driver: &str, parent: &str, id: &str) -> Result<PathBuf> {
    match driver {
        "cgroupfs" => {
            let parent = if parent.is_empty() { "/" } else { parent };
            Ok(Path::new(parent).join(format!("crid-{id}")))
        }
        "systemd" => {
            let slice = if parent.is_empty() {
                "system.slice"
            } else {
                Path::new(parent)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(parent)
            };
            if !slice.ends_with(".slice") {
                return Err(Error::invalid(format!(
                    "cgroup_parent: {parent:?} is not a systemd slice"
                )));
            }
            Ok(PathBuf::from(format!("{slice}:crid:{id}")))
        }
        d => Err(Error::invalid(format!("cgroup_driver: unknown {d:?}"))),
    }
}

/// The OCI id mappings of a pod's own user namespace (none for the
/// node's). runc needs them even when it joins the namespace by path: it
/// finds the host ids of the container's root in them (for its files and
/// the shim's stdio pipes).
pub(crate) fn set_id_mappings(
    linux: &mut Linux,
    userns: Option<crate::network::userns::PodUserns>,
) {
    let oci = |m: crate::network::userns::IdMap| {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(m.container_id)
            .host_id(m.host_id)
            .size(m.size)
            .build()
            .map(|m| vec![m])
            .ok()
    };
    linux.set_uid_mappings(userns.and_then(|u| oci(u.uids)));
    linux.set_gid_mappings(userns.and_then(|u| oci(u.gids)));
}

pub(crate) fn ns(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ);
    n.set_path(path);
    n
}

fn mode(v: i32) -> NamespaceMode {
    NamespaceMode::try_from(v).unwrap_or(NamespaceMode::Pod)
}

/// Namespaces of a container joining its sandbox.
fn container_namespaces(
    input: &ContainerSpecInput,
    opts: &crate::cri::NamespaceOption,
) -> Result<Vec<LinuxNamespace>> {
    let proc_ns = |pid: u32, n: &str| Some(PathBuf::from(format!("/proc/{pid}/ns/{n}")));
    let sp = input.sandbox_pid;
    let mut v = vec![ns(LinuxNamespaceType::Mount, None)];
    if let Some((path, _)) = input.userns {
        v.insert(0, ns(LinuxNamespaceType::User, Some(path.to_path_buf())));
    }
    if mode(opts.network) != NamespaceMode::Node {
        let path = input
            .netns_path
            .map(Path::to_path_buf)
            .or_else(|| proc_ns(sp, "net"));
        v.push(ns(LinuxNamespaceType::Network, path));
    }
    let pinned_or_pause =
        |pin: Option<&Path>, n: &str| pin.map(Path::to_path_buf).or_else(|| proc_ns(sp, n));
    if mode(opts.ipc) != NamespaceMode::Node {
        v.push(ns(
            LinuxNamespaceType::Ipc,
            pinned_or_pause(input.ipc_ns_path, "ipc"),
        ));
    }
    v.push(ns(
        LinuxNamespaceType::Uts,
        pinned_or_pause(input.uts_ns_path, "uts"),
    ));
    match mode(opts.pid) {
        // No pause process (`drop_pause_container`): no pod PID namespace.
        NamespaceMode::Pod if sp == 0 => {
            return Err(Error::precondition(
                "namespace_options.pid: POD, but the pod sandbox has no shared PID namespace",
            ))
        }
        NamespaceMode::Pod => v.push(ns(LinuxNamespaceType::Pid, proc_ns(sp, "pid"))),
        NamespaceMode::Container => v.push(ns(LinuxNamespaceType::Pid, None)),
        NamespaceMode::Node => {}
        NamespaceMode::Target => {
            let pid = input.target_pid.ok_or_else(|| {
                Error::invalid(format!(
                    "namespace_options.target_id: {:?} has no running process",
                    opts.target_id
                ))
            })?;
            v.push(ns(LinuxNamespaceType::Pid, proc_ns(pid, "pid")));
        }
    }
    Ok(v)
}

#[allow(deprecated)] // seccomp_profile_path / apparmor_profile: still sent by older kubelets
pub fn container_spec(input: &ContainerSpecInput) -> Result<Spec> {
    let cfg = input.config;
    let linux_cfg = cfg.linux.clone().unwrap_or_default();
    let sc = linux_cfg.security_context.clone().unwrap_or_default();
    let img = input.image.config().as_ref();
    let privileged = sc.privileged;
    let sandbox_privileged = input
        .sandbox_config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .is_some_and(|s| s.privileged);
    if privileged && !sandbox_privileged {
        return Err(Error::invalid(
            "security_context.privileged: the sandbox is not privileged",
        ));
    }

    // Process.
    let mut p = Process::default();
    p.set_terminal(Some(cfg.tty));
    p.set_args(Some(process::args(cfg, img)?));
    p.set_env(Some(process::env(cfg, img)));
    p.set_cwd(process::cwd(cfg, img).into());
    let resolved = user::resolve_user(
        &user::UserRequest {
            run_as_user: sc.run_as_user.as_ref().map(|v| v.value),
            run_as_username: &sc.run_as_username,
            run_as_group: sc.run_as_group.as_ref().map(|v| v.value),
            supplemental_groups: &sc.supplemental_groups,
            image_user: img.and_then(|c| c.user().as_deref()).unwrap_or(""),
            strict_groups: sc.supplemental_groups_policy
                == crate::cri::SupplementalGroupsPolicy::Strict as i32,
        },
        input.etc_passwd,
        input.etc_group,
    )?;
    let mut u = User::default();
    u.set_uid(resolved.uid);
    u.set_gid(resolved.gid);
    u.set_additional_gids(Some(resolved.additional_gids));
    p.set_user(u);
    let (add, drop) = sc
        .capabilities
        .as_ref()
        .map(|c| (c.add_capabilities.clone(), c.drop_capabilities.clone()))
        .unwrap_or_default();
    let caps = security::capabilities(privileged, &add, &drop)?;
    p.set_capabilities(Some(security::linux_capabilities(&caps)));
    p.set_no_new_privileges(Some(sc.no_new_privs));
    p.set_rlimits(None);
    let res = linux_cfg.resources.clone().unwrap_or_default();
    let oom = (res.oom_score_adj.clamp(-1000, 1000) as i32).max(input.oom_score_adj_min);
    p.set_oom_score_adj(Some(oom));
    p.set_apparmor_profile(security::apparmor_profile(
        input.apparmor_enabled,
        privileged,
        sc.apparmor.as_ref(),
        &sc.apparmor_profile,
    ));

    // Mounts.
    let files = input.sandbox_files;
    let mut file_mounts = Vec::new();
    for (dest, src) in [
        ("/etc/hostname", files.hostname),
        ("/etc/hosts", files.hosts),
        ("/etc/resolv.conf", files.resolv_conf),
    ] {
        if let Some(src) = src {
            file_mounts.push(mounts::bind(dest, src, sc.readonly_rootfs));
        }
    }
    if let Some((host, dest)) = input.termination_message {
        file_mounts.push(mounts::bind(dest, host, false));
    }
    let (cri, rootfs_prop) = mounts::cri_mounts(&cfg.mounts, input.recursive_read_only_mounts)?;
    let all_mounts = mounts::assemble(
        mounts::default_mounts(privileged, files.shm),
        file_mounts,
        cri,
    );

    // Linux.
    let mut linux = Linux::default();
    let ns_opts = sc.namespace_options.clone().unwrap_or_default();
    linux.set_namespaces(Some(container_namespaces(input, &ns_opts)?));
    let parent = input
        .sandbox_config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.as_str())
        .unwrap_or("");
    linux.set_cgroups_path(Some(cgroups_path(input.cgroup_driver, parent, input.id)?));
    let mut resources: LinuxResources = resources_to_oci(&res);
    fit_to_node(&mut resources, input.cgroups);
    let (nodes, mut rules) = security::devices(input.devices)?;
    let mut deny_all = oci_spec::runtime::LinuxDeviceCgroup::default();
    deny_all.set_allow(privileged);
    deny_all.set_access(Some("rwm".into()));
    rules.insert(0, deny_all);
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
    linux.set_devices(if nodes.is_empty() { None } else { Some(nodes) });
    let (masked, ro) =
        security::masked_and_readonly(privileged, &sc.masked_paths, &sc.readonly_paths);
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(ro));
    linux.set_rootfs_propagation(rootfs_prop.map(String::from));
    let choice = security::seccomp_choice(
        sc.seccomp.as_ref(),
        &sc.seccomp_profile_path,
        security::seccomp_when_empty(input.seccomp_default_when_empty),
    )?;
    linux.set_seccomp(security::seccomp(
        &choice,
        privileged,
        &caps,
        input.seccomp_localhost_profile,
    )?);
    linux.set_sysctl(None);
    set_id_mappings(&mut linux, input.userns.map(|u| u.1));

    let mut root = Root::default();
    root.set_path("rootfs".into());
    root.set_readonly(Some(sc.readonly_rootfs));

    let mut ann: HashMap<String, String> = cfg.annotations.clone().into_iter().collect();
    ann.insert(ANN_CONTAINER_TYPE.into(), "container".into());
    ann.insert(ANN_SANDBOX_ID.into(), input.sandbox_id.into());
    let name = cfg
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    ann.insert("io.kubernetes.cri.container-name".into(), name);
    ann.insert(
        "io.kubernetes.cri.image-name".into(),
        input.image_name.into(),
    );

    let mut spec = Spec::default();
    spec.set_version("1.0.2-dev".into());
    spec.set_process(Some(p));
    spec.set_root(Some(root));
    spec.set_mounts(Some(all_mounts));
    spec.set_hostname(None);
    spec.set_hooks(None);
    spec.set_annotations(Some(ann));
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests;
