//! OCI spec of the pause (sandbox) container and the content of the sandbox
//! files (/etc/hosts, /etc/resolv.conf). Pure: environment facts come in.

use crate::container::spec::mounts::{bind, default_mounts};
use crate::container::spec::security::{self, SeccompChoice};
use crate::container::spec::{cgroups_path, ns, process, ANN_CONTAINER_TYPE, ANN_SANDBOX_ID};
use crate::cri::{ContainerConfig, DnsConfig, NamespaceMode, PodSandboxConfig};
use crate::error::{Error, Result};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Linux, LinuxNamespaceType, Process, Root, Spec, User};
use std::collections::HashMap;
use std::path::Path;

/// oom_score_adj kubelet expects for the pause container (clamped).
pub const SANDBOX_OOM_SCORE_ADJ: i32 = -998;

pub struct SandboxSpecInput<'a> {
    pub id: &'a str,
    pub config: &'a PodSandboxConfig,
    /// The pause image's config (entrypoint/cmd/env/workdir).
    pub image: &'a ImageConfiguration,
    /// None = host network.
    pub netns_path: Option<&'a Path>,
    pub hostname_path: &'a Path,
    pub hosts_path: &'a Path,
    pub resolv_path: &'a Path,
    /// None when the pod uses the host IPC namespace.
    pub shm_path: Option<&'a Path>,
    /// The pod's own user namespace (pinned path, mapping); None: the node's.
    pub userns: Option<(&'a Path, crate::network::userns::PodUserns)>,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: &'a str,
    pub oom_score_adj_min: i32,
    /// What the node's cgroups can apply; limits they cannot are left out.
    pub cgroups: &'a crate::util::platform::cgroups::Cgroups,
    /// The image is crid's built-in pause image and `minimal_pause_seccomp`
    /// is on: `RuntimeDefault` means `pause_program_profile`.
    pub pause_program: bool,
    /// `seccomp_default_when_empty`: no profile asked for means
    /// `RuntimeDefault` instead of unconfined.
    pub seccomp_default_when_empty: bool,
}

#[allow(deprecated)] // seccomp_profile_path: still sent by older kubelets
pub fn sandbox_spec(input: &SandboxSpecInput) -> Result<Spec> {
    let cfg = input.config;
    let linux_cfg = cfg.linux.clone().unwrap_or_default();
    let sc = linux_cfg.security_context.clone().unwrap_or_default();
    let nso = sc.namespace_options.clone().unwrap_or_default();
    let mode = |v: i32| NamespaceMode::try_from(v).unwrap_or(NamespaceMode::Pod);
    let host_net = mode(nso.network) == NamespaceMode::Node;
    let host_ipc = mode(nso.ipc) == NamespaceMode::Node;
    let host_pid = mode(nso.pid) == NamespaceMode::Node;
    if !host_net && input.netns_path.is_none() {
        return Err(Error::invalid(
            "netns_path: required unless the pod uses the host network",
        ));
    }

    // Process: the pause image's argv, no CRI overrides.
    let img = input.image.config().as_ref();
    let empty = ContainerConfig::default();
    let mut p = Process::default();
    p.set_terminal(Some(false));
    p.set_args(Some(process::args(&empty, img).map_err(|_| {
        Error::invalid("sandbox image has no ENTRYPOINT or CMD")
    })?));
    p.set_env(Some(process::env(&empty, img)));
    p.set_cwd(process::cwd(&empty, img).into());
    let mut u = User::default();
    u.set_uid(sc.run_as_user.as_ref().map_or(0, |v| v.value as u32));
    u.set_gid(sc.run_as_group.as_ref().map_or(0, |v| v.value as u32));
    let mut gids: Vec<u32> = vec![u.gid()];
    gids.extend(sc.supplemental_groups.iter().map(|g| *g as u32));
    u.set_additional_gids(Some(gids));
    p.set_user(u);
    let caps = security::capabilities(sc.privileged, &[], &[])?;
    p.set_capabilities(Some(security::linux_capabilities(&caps)));
    p.set_no_new_privileges(Some(true));
    p.set_rlimits(None);
    p.set_oom_score_adj(Some(SANDBOX_OOM_SCORE_ADJ.max(input.oom_score_adj_min)));

    let mut mounts = default_mounts(sc.privileged, input.shm_path);
    mounts.push(bind("/etc/hostname", input.hostname_path, true));
    mounts.push(bind("/etc/hosts", input.hosts_path, true));
    mounts.push(bind("/etc/resolv.conf", input.resolv_path, true));

    let mut linux = Linux::default();
    let mut nss: Vec<_> = input
        .userns
        .map(|(p, _)| ns(LinuxNamespaceType::User, Some(p.to_path_buf())))
        .into_iter()
        .collect();
    nss.extend([
        ns(LinuxNamespaceType::Mount, None),
        ns(LinuxNamespaceType::Uts, None),
    ]);
    if !host_net {
        nss.push(ns(
            LinuxNamespaceType::Network,
            input.netns_path.map(Path::to_path_buf),
        ));
    }
    if !host_ipc {
        nss.push(ns(LinuxNamespaceType::Ipc, None));
    }
    if !host_pid {
        nss.push(ns(LinuxNamespaceType::Pid, None));
    }
    linux.set_namespaces(Some(nss));
    linux.set_cgroups_path(Some(cgroups_path(
        input.cgroup_driver,
        &linux_cfg.cgroup_parent,
        input.id,
    )?));
    if !linux_cfg.sysctls.is_empty() {
        linux.set_sysctl(Some(linux_cfg.sysctls.clone().into_iter().collect()));
    } else {
        linux.set_sysctl(None);
    }
    let (masked, ro) = security::masked_and_readonly(sc.privileged, &[], &[]);
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(ro));
    let choice = security::seccomp_choice(
        sc.seccomp.as_ref(),
        &sc.seccomp_profile_path,
        security::seccomp_when_empty(input.seccomp_default_when_empty),
    )?;
    // A Localhost profile for the pause process is not loaded: use the default.
    let choice = match choice {
        SeccompChoice::Localhost(_) => SeccompChoice::RuntimeDefault,
        c => c,
    };
    // crid's own pause program gets a profile made for it (see
    // `pause_program_profile`): stricter, and cheap for runc to load.
    let profile = match choice {
        SeccompChoice::RuntimeDefault if input.pause_program && !sc.privileged => {
            Some(crate::container::seccomp::pause_program_profile())
        }
        c => security::seccomp(&c, sc.privileged, &caps, None)?,
    };
    linux.set_seccomp(profile);
    if let Some(r) = linux_cfg.resources.as_ref() {
        let mut resources = crate::container::spec::resources_to_oci(r);
        crate::container::spec::fit_to_node(&mut resources, input.cgroups);
        linux.set_resources(Some(resources));
    } else {
        linux.set_resources(None);
    }
    crate::container::spec::set_id_mappings(&mut linux, input.userns.map(|u| u.1));
    linux.set_devices(None);

    let mut root = Root::default();
    root.set_path("rootfs".into());
    root.set_readonly(Some(true));

    let md = cfg.metadata.clone().unwrap_or_default();
    let mut ann: HashMap<String, String> = HashMap::new();
    ann.insert(ANN_CONTAINER_TYPE.into(), "sandbox".into());
    ann.insert(ANN_SANDBOX_ID.into(), input.id.into());
    ann.insert("io.kubernetes.cri.sandbox-name".into(), md.name);
    ann.insert("io.kubernetes.cri.sandbox-namespace".into(), md.namespace);
    ann.insert("io.kubernetes.cri.sandbox-uid".into(), md.uid);

    let mut spec = Spec::default();
    spec.set_version("1.0.2-dev".into());
    spec.set_process(Some(p));
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    // With the host network the UTS namespace is still private (runc needs
    // one to set a hostname); kubelet gives the node's name as hostname.
    spec.set_hostname(if cfg.hostname.is_empty() {
        None
    } else {
        Some(cfg.hostname.clone())
    });
    spec.set_hooks(None);
    spec.set_annotations(Some(ann));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// /etc/resolv.conf of the pod: from the DNS config when it has any
/// content, else the host's file unchanged.
pub fn resolv_conf(dns: Option<&DnsConfig>, host_resolv: &str) -> String {
    let Some(d) =
        dns.filter(|d| !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()))
    else {
        return host_resolv.to_string();
    };
    let mut out = String::new();
    if !d.searches.is_empty() {
        out.push_str(&format!("search {}\n", d.searches.join(" ")));
    }
    for s in &d.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !d.options.is_empty() {
        out.push_str(&format!("options {}\n", d.options.join(" ")));
    }
    out
}

/// /etc/hosts of the pod: localhost entries plus the pod's own name.
pub fn hosts_file(hostname: &str, ip: Option<&str>) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if !hostname.is_empty() {
        out.push_str(&format!("{}\t{hostname}\n", ip.unwrap_or("127.0.1.1")));
    }
    out
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
