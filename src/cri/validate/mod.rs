//! Validation of CRI input before it reaches the domain: every field that
//! becomes a path, a file's content, a kernel setting or a resource limit is
//! checked here and rejected with `InvalidArgument` naming the field (or
//! `FailedPrecondition` for what is well-formed but unsupported). Pure
//! functions, no I/O; callers validate first and change nothing on error.

use crate::cri::{
    ContainerConfig, DnsConfig, LinuxContainerResources, Mount, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PortMapping, SecurityProfile, SupplementalGroupsPolicy,
};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Component, Path};

/// Longest string crid accepts in any field that is not free text.
const MAX_FIELD: usize = 4096;
/// cgroup v1/v2 limits for `cpu.shares`.
const MAX_CPU_SHARES: i64 = 262_144;
/// A smaller memory limit kills the container before it starts.
pub const MIN_MEMORY: i64 = 4 << 20;

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{field}: {why}"))
}

/// An object id: full 64-hex id or a unique hex prefix of one.
pub fn id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(field, format!("{:?} is not an id", truncate(id))));
    }
    Ok(())
}

/// A string with no NUL (and, when `line`, no line breaks), of bounded size.
pub fn text(field: &str, value: &str, line: bool) -> Result<()> {
    if value.len() > MAX_FIELD {
        return Err(invalid(field, format!("longer than {MAX_FIELD} bytes")));
    }
    if value.contains('\0') {
        return Err(invalid(field, "contains a NUL byte"));
    }
    if line && (value.contains('\n') || value.contains('\r')) {
        return Err(invalid(field, "contains a line break"));
    }
    Ok(())
}

/// A name used in file names and name keys: non-empty, no `/`, ≤ 253 bytes.
pub fn name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if value.len() > 253
        || value.contains('/')
        || value == "."
        || value == ".."
        || value.chars().any(|c| c.is_control())
    {
        return Err(invalid(
            field,
            format!("{:?} is not a valid name", truncate(value)),
        ));
    }
    Ok(())
}

/// An absolute path without NUL, `..` components or line breaks.
pub fn abs_path(field: &str, value: &str) -> Result<()> {
    text(field, value, true)?;
    let p = Path::new(value);
    if !p.is_absolute() {
        return Err(invalid(
            field,
            format!("{:?} is not absolute", truncate(value)),
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(
            field,
            format!("{:?} contains \"..\"", truncate(value)),
        ));
    }
    Ok(())
}

/// Kubernetes qualified name: `[prefix/]name`, prefix a DNS subdomain,
/// name ≤ 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn qualified_name(field: &str, key: &str) -> Result<()> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let bad = || {
        invalid(
            field,
            format!("{:?} is not a qualified name", truncate(key)),
        )
    };
    let alnum_ends = |s: &str| {
        s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if name.is_empty()
        || name.len() > 63
        || !alnum_ends(name)
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(bad());
    }
    if let Some(p) = prefix {
        if p.is_empty()
            || p.len() > 253
            || !p.split('.').all(|l| {
                !l.is_empty()
                    && alnum_ends(l)
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        {
            return Err(bad());
        }
    }
    Ok(())
}

fn labels(field: &str, map: &HashMap<String, String>) -> Result<()> {
    for (k, v) in map {
        qualified_name(&format!("{field} key"), k)?;
        text(&format!("{field}[{k}]"), v, false)?;
    }
    Ok(())
}

fn annotations(field: &str, map: &HashMap<String, String>) -> Result<()> {
    for (k, v) in map {
        if k.is_empty() {
            return Err(invalid(field, "empty key"));
        }
        text(&format!("{field} key"), k, true)?;
        if v.contains('\0') {
            return Err(invalid(&format!("{field}[{k}]"), "contains a NUL byte"));
        }
    }
    Ok(())
}

pub fn resources(field: &str, r: &LinuxContainerResources) -> Result<()> {
    let f = |n: &str| format!("{field}.{n}");
    if !(r.cpu_shares == 0 || (2..=MAX_CPU_SHARES).contains(&r.cpu_shares)) {
        return Err(invalid(
            &f("cpu_shares"),
            format!("{} is not in 2..={MAX_CPU_SHARES}", r.cpu_shares),
        ));
    }
    if !(r.cpu_period == 0 || (1000..=1_000_000).contains(&r.cpu_period)) {
        return Err(invalid(
            &f("cpu_period"),
            format!("{} is not in 1000..=1000000 µs", r.cpu_period),
        ));
    }
    if !(r.cpu_quota == 0 || r.cpu_quota == -1 || (1000..=i64::MAX / 2).contains(&r.cpu_quota)) {
        return Err(invalid(
            &f("cpu_quota"),
            format!("{} is not -1, 0 or ≥ 1000 µs", r.cpu_quota),
        ));
    }
    if r.memory_limit_in_bytes != 0 && r.memory_limit_in_bytes < MIN_MEMORY {
        return Err(invalid(
            &f("memory_limit_in_bytes"),
            format!("{} is below {MIN_MEMORY}", r.memory_limit_in_bytes),
        ));
    }
    if r.memory_swap_limit_in_bytes < -1 {
        return Err(invalid(&f("memory_swap_limit_in_bytes"), "is negative"));
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(invalid(
            &f("oom_score_adj"),
            format!("{} is not in -1000..=1000", r.oom_score_adj),
        ));
    }
    for (n, v) in [
        ("cpuset_cpus", &r.cpuset_cpus),
        ("cpuset_mems", &r.cpuset_mems),
    ] {
        if v.len() > 1024
            || !v
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
        {
            return Err(invalid(
                &f(n),
                format!("{:?} is not a CPU/node list", truncate(v)),
            ));
        }
    }
    for h in &r.hugepage_limits {
        if h.page_size.is_empty()
            || h.page_size.len() > 16
            || !h.page_size.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(invalid(
                &f("hugepage_limits.page_size"),
                format!("{:?}", truncate(&h.page_size)),
            ));
        }
    }
    for (k, v) in &r.unified {
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            return Err(invalid(
                &f("unified"),
                format!("{:?} is not a cgroup file", truncate(k)),
            ));
        }
        text(&f("unified"), k, true)?;
        text(&format!("{field}.unified[{k}]"), v, true)?;
    }
    Ok(())
}

fn port_mapping(pm: &PortMapping) -> Result<()> {
    let field = "config.port_mappings";
    if !(0..=65535).contains(&pm.host_port) {
        return Err(invalid(
            field,
            format!("host_port {} is out of range", pm.host_port),
        ));
    }
    if !(1..=65535).contains(&pm.container_port) {
        return Err(invalid(
            field,
            format!("container_port {} is out of range", pm.container_port),
        ));
    }
    if !(0..=2).contains(&pm.protocol) {
        return Err(invalid(
            field,
            format!("protocol {} is unknown", pm.protocol),
        ));
    }
    if !pm.host_ip.is_empty() && pm.host_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(
            field,
            format!("host_ip {:?} is not an IP", truncate(&pm.host_ip)),
        ));
    }
    Ok(())
}

fn dns(d: &DnsConfig) -> Result<()> {
    for s in &d.servers {
        if s.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                "config.dns_config.servers",
                format!("{:?} is not an IP", truncate(s)),
            ));
        }
    }
    for (field, list) in [("searches", &d.searches), ("options", &d.options)] {
        for s in list {
            let f = format!("config.dns_config.{field}");
            text(&f, s, true)?;
            if s.is_empty() || s.chars().any(char::is_whitespace) {
                return Err(invalid(
                    &f,
                    format!("{:?} is not a single word", truncate(s)),
                ));
            }
        }
    }
    Ok(())
}

/// Sysctls a pod may set: namespaced ones (`net.*` only with its own netns).
fn sysctl(name: &str, value: &str, host_network: bool, host_ipc: bool) -> Result<()> {
    let field = "config.linux.sysctls";
    if name.is_empty()
        || name.len() > 256
        || name.contains("..")
        || name.starts_with(['.', '/'])
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-".contains(&b))
    {
        return Err(invalid(
            field,
            format!("{:?} is not a sysctl name", truncate(name)),
        ));
    }
    let n = name.replace('/', ".");
    let ipc = n.starts_with("kernel.shm")
        || n.starts_with("kernel.msg")
        || n == "kernel.sem"
        || n.starts_with("fs.mqueue.");
    let net = n.starts_with("net.");
    if (ipc && host_ipc) || (net && host_network) {
        return Err(invalid(
            field,
            format!("{name} would change the host's namespace"),
        ));
    }
    if !ipc && !net {
        return Err(invalid(field, format!("{name} is not a namespaced sysctl")));
    }
    text(&format!("{field}[{name}]"), value, true)
}

fn security_profile(field: &str, p: &Option<SecurityProfile>) -> Result<()> {
    if let Some(p) = p {
        if !(0..=2).contains(&p.profile_type) {
            return Err(invalid(
                field,
                format!("profile_type {} is unknown", p.profile_type),
            ));
        }
        if p.profile_type == 2 {
            abs_path(&format!("{field}.localhost_ref"), &p.localhost_ref)?;
        }
    }
    Ok(())
}

/// `userns_options`: absent or NODE is the node's user namespace; POD is
/// a new one for the pod, with exactly one uid and one gid range, each
/// mapping container id 0 to a host range that does not wrap. CONTAINER,
/// TARGET and anything else are refused: a pod's containers share its
/// user namespace (CRI's `UserNamespace` allows only POD and NODE). A pod
/// of its own cannot share the node's network, IPC or PID namespace
/// (Kubernetes refuses `hostUsers: false` with those too).
pub fn user_namespace(field: &str, ns: Option<&NamespaceOption>) -> Result<()> {
    let Some(u) = ns.and_then(|n| n.userns_options.as_ref()) else {
        return Ok(());
    };
    match NamespaceMode::try_from(u.mode) {
        Ok(NamespaceMode::Node) => return Ok(()),
        Ok(NamespaceMode::Pod) => {}
        _ => {
            return Err(invalid(
                field,
                format!("mode {} (only NODE or POD)", u.mode),
            ))
        }
    }
    for (what, maps) in [("uids", &u.uids), ("gids", &u.gids)] {
        let f = format!("{field}.{what}");
        let [m] = maps.as_slice() else {
            return Err(invalid(
                &f,
                format!("{} mappings (POD needs exactly one)", maps.len()),
            ));
        };
        if m.container_id != 0 {
            return Err(invalid(
                &f,
                format!(
                    "container id {} is mapped, not 0 (the container's root must be mapped)",
                    m.container_id
                ),
            ));
        }
        if m.length == 0 || m.host_id.checked_add(m.length - 1).is_none() {
            return Err(invalid(
                &f,
                format!("host range {}+{} is empty or wraps", m.host_id, m.length),
            ));
        }
    }
    let n = ns.expect("userns_options set");
    for (what, mode) in [("network", n.network), ("ipc", n.ipc), ("pid", n.pid)] {
        if mode == NamespaceMode::Node as i32 {
            return Err(invalid(
                field,
                format!(
                    "a pod's own user namespace cannot be used with the host's {what} namespace"
                ),
            ));
        }
    }
    Ok(())
}

fn ids(field: &str, user: Option<i64>, group: Option<i64>, groups: &[i64]) -> Result<()> {
    for v in user.into_iter().chain(group).chain(groups.iter().copied()) {
        if !(0..=u32::MAX as i64).contains(&v) {
            return Err(invalid(field, format!("uid/gid {v} is out of range")));
        }
    }
    Ok(())
}

pub fn sandbox_config(config: &PodSandboxConfig) -> Result<()> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| Error::invalid("config.metadata is required"))?;
    name("config.metadata.name", &m.name)?;
    name("config.metadata.namespace", &m.namespace)?;
    name("config.metadata.uid", &m.uid)?;
    if m.attempt > 1_000_000 {
        return Err(invalid("config.metadata.attempt", m.attempt));
    }
    if !config.hostname.is_empty() {
        text("config.hostname", &config.hostname, true)?;
        if config.hostname.len() > 64 || config.hostname.contains(['/', ' ', '\t']) {
            return Err(invalid(
                "config.hostname",
                format!("{:?} is not a host name", truncate(&config.hostname)),
            ));
        }
    }
    if !config.log_directory.is_empty() {
        abs_path("config.log_directory", &config.log_directory)?;
    }
    if let Some(d) = &config.dns_config {
        dns(d)?;
    }
    for pm in &config.port_mappings {
        port_mapping(pm)?;
    }
    labels("config.labels", &config.labels)?;
    annotations("config.annotations", &config.annotations)?;
    if let Some(l) = &config.linux {
        text("config.linux.cgroup_parent", &l.cgroup_parent, true)?;
        if l.cgroup_parent.split('/').any(|c| c == "..") {
            return Err(invalid("config.linux.cgroup_parent", "contains \"..\""));
        }
        for (field, r) in [
            ("config.linux.overhead", &l.overhead),
            ("config.linux.resources", &l.resources),
        ] {
            if let Some(r) = r {
                resources(field, r)?;
            }
        }
        let sc = l.security_context.as_ref();
        let ns = sc.and_then(|s| s.namespace_options.as_ref());
        user_namespace(
            "config.linux.security_context.namespace_options.userns_options",
            ns,
        )?;
        let host_net = ns.is_some_and(|n| n.network == crate::cri::NamespaceMode::Node as i32);
        let host_ipc = ns.is_some_and(|n| n.ipc == crate::cri::NamespaceMode::Node as i32);
        for (k, v) in &l.sysctls {
            sysctl(k, v, host_net, host_ipc)?;
        }
        if let Some(sc) = sc {
            ids(
                "config.linux.security_context",
                sc.run_as_user.as_ref().map(|v| v.value),
                sc.run_as_group.as_ref().map(|v| v.value),
                &sc.supplemental_groups,
            )?;
            security_profile("config.linux.security_context.seccomp", &sc.seccomp)?;
            security_profile("config.linux.security_context.apparmor", &sc.apparmor)?;
        }
    }
    Ok(())
}

fn mount(m: &Mount) -> Result<()> {
    abs_path("config.mounts.container_path", &m.container_path)?;
    if !m.host_path.is_empty() {
        abs_path("config.mounts.host_path", &m.host_path)?;
    }
    if let Some(image) = &m.image {
        // An image volume (KEP 4639): the image, read-only, and no host path.
        let field = "config.mounts.image";
        if !m.host_path.is_empty() {
            return Err(invalid(field, "set together with host_path"));
        }
        if !m.readonly {
            return Err(invalid(
                field,
                "image volumes are read-only: readonly must be set",
            ));
        }
        if image.image.is_empty() {
            return Err(invalid(field, "names no image"));
        }
        text(field, &image.image, true)?;
        let sub = &m.image_sub_path;
        if !sub.is_empty() {
            // Relative to the image's root, and inside it.
            let p = Path::new(sub);
            if p.is_absolute()
                || sub.contains('\0')
                || p.components().any(|c| c == std::path::Component::ParentDir)
            {
                return Err(invalid(
                    "config.mounts.image_sub_path",
                    format!("{sub:?} is not a relative path inside the image"),
                ));
            }
        }
    } else if !m.image_sub_path.is_empty() {
        return Err(invalid(
            "config.mounts.image_sub_path",
            "set without an image",
        ));
    }
    if !(0..=2).contains(&m.propagation) {
        return Err(invalid("config.mounts.propagation", m.propagation));
    }
    Ok(())
}

pub fn container_config(config: &ContainerConfig) -> Result<()> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| Error::invalid("config.metadata is required"))?;
    name("config.metadata.name", &m.name)?;
    if m.attempt > 1_000_000 {
        return Err(invalid("config.metadata.attempt", m.attempt));
    }
    let image = config
        .image
        .as_ref()
        .map(|i| i.image.as_str())
        .unwrap_or("");
    if image.is_empty() {
        return Err(Error::invalid("config.image.image is empty"));
    }
    text("config.image.image", image, true)?;
    crate::cri::signal::cri_signal_name(config.stop_signal)
        .map_err(|e| invalid("config.stop_signal", e))?;
    for a in config.command.iter().chain(&config.args) {
        if a.contains('\0') {
            return Err(invalid("config.command/args", "contains a NUL byte"));
        }
    }
    if !config.working_dir.is_empty() {
        abs_path("config.working_dir", &config.working_dir)?;
    }
    for kv in &config.envs {
        if kv.key.is_empty() || kv.key.contains(['=', '\0']) || kv.value.contains(&0) {
            return Err(invalid(
                "config.envs",
                format!("{:?} is not a valid variable", truncate(&kv.key)),
            ));
        }
    }
    for mnt in &config.mounts {
        mount(mnt)?;
    }
    for d in &config.devices {
        abs_path("config.devices.container_path", &d.container_path)?;
        abs_path("config.devices.host_path", &d.host_path)?;
        if !d.permissions.bytes().all(|b| b"rwm".contains(&b)) || d.permissions.len() > 3 {
            return Err(invalid(
                "config.devices.permissions",
                format!("{:?}", truncate(&d.permissions)),
            ));
        }
    }
    labels("config.labels", &config.labels)?;
    annotations("config.annotations", &config.annotations)?;
    if !config.log_path.is_empty() {
        text("config.log_path", &config.log_path, true)?;
        let p = Path::new(&config.log_path);
        if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(invalid(
                "config.log_path",
                format!(
                    "{:?} must be relative and stay inside the pod's log directory",
                    truncate(&config.log_path)
                ),
            ));
        }
    }
    if let Some(l) = &config.linux {
        if let Some(r) = &l.resources {
            resources("config.linux.resources", r)?;
        }
        if let Some(sc) = &l.security_context {
            user_namespace(
                "config.linux.security_context.namespace_options.userns_options",
                sc.namespace_options.as_ref(),
            )?;
            ids(
                "config.linux.security_context",
                sc.run_as_user.as_ref().map(|v| v.value),
                sc.run_as_group.as_ref().map(|v| v.value),
                &sc.supplemental_groups,
            )?;
            if SupplementalGroupsPolicy::try_from(sc.supplemental_groups_policy).is_err() {
                return Err(invalid(
                    "config.linux.security_context.supplemental_groups_policy",
                    sc.supplemental_groups_policy,
                ));
            }
            text(
                "config.linux.security_context.run_as_username",
                &sc.run_as_username,
                true,
            )?;
            // A group alone would run as the image's user with another
            // group: refused, as containerd does.
            if sc.run_as_group.is_some()
                && sc.run_as_user.is_none()
                && sc.run_as_username.is_empty()
            {
                return Err(invalid(
                    "config.linux.security_context.run_as_group",
                    "set without run_as_user or run_as_username",
                ));
            }
            for p in sc.masked_paths.iter().chain(&sc.readonly_paths) {
                abs_path("config.linux.security_context.masked/readonly_paths", p)?;
            }
            security_profile("config.linux.security_context.seccomp", &sc.seccomp)?;
            security_profile("config.linux.security_context.apparmor", &sc.apparmor)?;
            if let Some(caps) = &sc.capabilities {
                for c in caps.add_capabilities.iter().chain(&caps.drop_capabilities) {
                    if c.is_empty()
                        || c.len() > 64
                        || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(invalid(
                            "config.linux.security_context.capabilities",
                            format!("{:?}", truncate(c)),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

pub fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests;
