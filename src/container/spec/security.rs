//! Capabilities, masked/readonly paths, seccomp and AppArmor selection,
//! and device entries for a container.

use crate::container::seccomp;
use crate::cri::{security_profile::ProfileType, SecurityProfile};
use crate::error::{Error, Result};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxSeccomp,
};
use std::str::FromStr;

/// containerd's default capability set.
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability oci-spec knows that crid itself holds (see
/// `util::platform::effective_capabilities`).
fn all_caps() -> Capabilities {
    caps_in_mask(crate::util::platform::effective_capabilities())
}

/// The capabilities whose bits are set in `mask`, by name through oci-spec.
fn caps_in_mask(mask: u64) -> Capabilities {
    (0..64)
        .filter(|i| mask & (1u64 << i) != 0)
        .filter_map(|i| cap_name_by_number(i).and_then(|n| Capability::from_str(n).ok()))
        .collect()
}

fn cap_name_by_number(i: u32) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    NAMES.get(i as usize).copied()
}

fn parse_cap(name: &str) -> Result<Capability> {
    let n = name.trim().to_ascii_uppercase();
    let n = n.strip_prefix("CAP_").unwrap_or(&n);
    Capability::from_str(n)
        .map_err(|_| Error::invalid(format!("capabilities: unknown capability {name:?}")))
}

/// The capability set: privileged → all; else defaults, `add` (ALL = every
/// capability) applied, then `drop` (ALL = none) — an explicit add survives
/// a drop of ALL, as in containerd.
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> Result<Capabilities> {
    if privileged {
        return Ok(all_caps());
    }
    let is_all = |s: &String| s.eq_ignore_ascii_case("ALL");
    let mut set: Capabilities = DEFAULT_CAPS.iter().copied().collect();
    if add.iter().any(is_all) {
        set = all_caps();
    }
    let mut added = Capabilities::new();
    for a in add.iter().filter(|a| !is_all(a)) {
        added.insert(parse_cap(a)?);
    }
    set.extend(added.iter().copied());
    if drop.iter().any(is_all) {
        set = added;
    }
    for d in drop.iter().filter(|d| !is_all(d)) {
        set.remove(&parse_cap(d)?);
    }
    Ok(set)
}

/// OCI capabilities: bounding = effective = permitted = `set`.
pub fn linux_capabilities(set: &Capabilities) -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(set.clone()));
    c.set_effective(Some(set.clone()));
    c.set_permitted(Some(set.clone()));
    c.set_inheritable(None);
    c.set_ambient(None);
    c
}

/// Masked and readonly paths: none when privileged; the CRI lists when
/// kubelet sends them (procMount), else the defaults.
pub fn masked_and_readonly(
    privileged: bool,
    masked: &[String],
    readonly: &[String],
) -> (Vec<String>, Vec<String>) {
    if privileged {
        return (vec![], vec![]);
    }
    let or_default = |given: &[String], d: &[&str]| {
        if given.is_empty() {
            d.iter().map(|s| s.to_string()).collect()
        } else {
            given.to_vec()
        }
    };
    (
        or_default(masked, MASKED_PATHS),
        or_default(readonly, READONLY_PATHS),
    )
}

/// Which seccomp profile the CRI asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    RuntimeDefault,
    Unconfined,
    /// Path of a Localhost profile; the caller loads it.
    Localhost(String),
}

/// What a process gets when the CRI names no seccomp profile: unconfined,
/// as the CRI and containerd read it; `RuntimeDefault` when the node asks
/// for it (`seccomp_default_when_empty`, CRI-O's
/// `seccomp_use_default_when_empty`).
pub fn seccomp_when_empty(default_when_empty: bool) -> SeccompChoice {
    if default_when_empty {
        SeccompChoice::RuntimeDefault
    } else {
        SeccompChoice::Unconfined
    }
}

/// From the structured field, else the deprecated `seccomp_profile_path`
/// string (`runtime/default`, `docker/default`, `unconfined`,
/// `localhost/<path>`); nothing set → `default`.
pub fn seccomp_choice(
    profile: Option<&SecurityProfile>,
    legacy_path: &str,
    default: SeccompChoice,
) -> Result<SeccompChoice> {
    if let Some(p) = profile {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(SeccompChoice::RuntimeDefault),
            Ok(ProfileType::Unconfined) => Ok(SeccompChoice::Unconfined),
            Ok(ProfileType::Localhost) if !p.localhost_ref.is_empty() => {
                Ok(SeccompChoice::Localhost(p.localhost_ref.clone()))
            }
            _ => Err(Error::invalid(
                "seccomp: localhost profile without localhost_ref or unknown type",
            )),
        };
    }
    match legacy_path {
        "" => Ok(default),
        "runtime/default" | "docker/default" => Ok(SeccompChoice::RuntimeDefault),
        "unconfined" => Ok(SeccompChoice::Unconfined),
        p => p
            .strip_prefix("localhost/")
            .map(|p| SeccompChoice::Localhost(p.to_string()))
            .ok_or_else(|| Error::invalid(format!("seccomp_profile_path: unknown {p:?}"))),
    }
}

/// The seccomp section for `choice`; a Localhost choice needs the profile
/// text (`localhost_profile`), loaded by the caller. Privileged → none.
pub fn seccomp(
    choice: &SeccompChoice,
    privileged: bool,
    caps: &Capabilities,
    localhost_profile: Option<&str>,
) -> Result<Option<LinuxSeccomp>> {
    if privileged {
        return Ok(None);
    }
    match choice {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::RuntimeDefault => Ok(Some(seccomp::default_profile(caps))),
        SeccompChoice::Localhost(path) => {
            let text = localhost_profile.ok_or_else(|| {
                Error::invalid(format!("seccomp: localhost profile {path} was not loaded"))
            })?;
            seccomp::parse_profile(text, path).map(Some)
        }
    }
}

/// AppArmor profile for the process: None when AppArmor is off,
/// unconfined or privileged; `crid-default` stands for RuntimeDefault.
pub fn apparmor_profile(
    enabled: bool,
    privileged: bool,
    profile: Option<&SecurityProfile>,
    legacy: &str,
) -> Option<String> {
    if !enabled {
        return None;
    }
    match profile {
        Some(p) => match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::Localhost) => {
                Some(p.localhost_ref.trim_start_matches("localhost/").to_string())
            }
            Ok(ProfileType::Unconfined) => None,
            _ if privileged => None,
            _ => Some("crid-default".into()),
        },
        None => match legacy {
            "unconfined" => None,
            l if l.starts_with("localhost/") => Some(l["localhost/".len()..].to_string()),
            _ if privileged => None,
            _ => Some("crid-default".into()),
        },
    }
}

/// A host device, already stat'ed by the caller (see `stat_device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub container_path: String,
    /// `c`, `b` or `p` device type.
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// cgroup permissions, e.g. `rwm`.
    pub permissions: String,
}

/// Device nodes and the cgroup rules allowing them.
pub fn devices(devs: &[DeviceInfo]) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in devs {
        let typ = match d.typ {
            'c' => LinuxDeviceType::C,
            'b' => LinuxDeviceType::B,
            'p' => LinuxDeviceType::P,
            t => {
                return Err(Error::invalid(format!(
                    "devices: {} has unsupported type {t:?}",
                    d.container_path
                )))
            }
        };
        let perms = if d.permissions.is_empty() {
            "rwm".to_string()
        } else {
            d.permissions.clone()
        };
        if perms.chars().any(|c| !"rwm".contains(c)) {
            return Err(Error::invalid(format!("devices.permissions: {perms:?}")));
        }
        let mut n = LinuxDevice::default();
        n.set_path(d.container_path.clone().into());
        n.set_typ(typ);
        n.set_major(d.major);
        n.set_minor(d.minor);
        n.set_file_mode(Some(d.file_mode & 0o7777));
        n.set_uid(Some(d.uid));
        n.set_gid(Some(d.gid));
        nodes.push(n);
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(Some(d.major));
        r.set_minor(Some(d.minor));
        r.set_access(Some(perms));
        rules.push(r);
    }
    Ok((nodes, rules))
}

/// A host node's type (`c`, `b` or `p`), major and minor (0 for a FIFO);
/// None when it is no device node or FIFO.
pub fn node_numbers(md: &std::fs::Metadata) -> Option<(char, i64, i64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        return Some(('p', 0, 0));
    } else {
        return None;
    };
    let rdev = md.rdev();
    Some((typ, libc::major(rdev) as i64, libc::minor(rdev) as i64))
}

/// Stat a host device node for [`DeviceInfo`] (the one impure helper here).
pub fn stat_device(host_path: &str, container_path: &str, permissions: &str) -> Result<DeviceInfo> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(host_path)
        .map_err(|e| Error::io(format!("stat device {host_path}"), e))?;
    let Some((typ, major, minor)) = node_numbers(&md) else {
        return Err(Error::invalid(format!(
            "devices.host_path: {host_path} is not a device"
        )));
    };
    Ok(DeviceInfo {
        container_path: if container_path.is_empty() {
            host_path.into()
        } else {
            container_path.into()
        },
        typ,
        major,
        minor,
        file_mode: md.mode(),
        uid: md.uid(),
        gid: md.gid(),
        permissions: permissions.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_caps_with_add_and_drop() {
        let c = capabilities(false, &[], &[]).unwrap();
        assert_eq!(c.len(), 14);
        assert!(c.contains(&Capability::NetRaw) && !c.contains(&Capability::SysAdmin));
        let c = capabilities(false, &s(&["CAP_SYS_ADMIN", "net_admin"]), &s(&["NET_RAW"])).unwrap();
        assert!(c.contains(&Capability::SysAdmin) && c.contains(&Capability::NetAdmin));
        assert!(!c.contains(&Capability::NetRaw));
        let c = capabilities(false, &s(&["NET_BIND_SERVICE"]), &s(&["ALL"])).unwrap();
        assert_eq!(c, [Capability::NetBindService].into_iter().collect());
        let all = capabilities(false, &s(&["ALL"]), &[]).unwrap();
        assert_eq!(
            all,
            caps_in_mask(crate::util::platform::effective_capabilities())
        );
        assert_eq!(capabilities(true, &[], &[]).unwrap(), all);
        assert!(matches!(
            capabilities(false, &s(&["BOGUS"]), &[]),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn all_capabilities_are_those_crid_holds() {
        assert!(caps_in_mask(u64::MAX).len() >= 40);
        // CAP_SYS_RESOURCE (24) missing, as on a node that runs crid without it.
        let without = caps_in_mask(!(1 << 24));
        assert!(!without.contains(&Capability::SysResource));
        assert!(without.contains(&Capability::SysAdmin));
        assert_eq!(without.len() + 1, caps_in_mask(u64::MAX).len());
    }

    #[test]
    fn masked_paths_default_overridden_or_cleared() {
        let (m, r) = masked_and_readonly(false, &[], &[]);
        assert!(m.contains(&"/proc/kcore".into()) && r.contains(&"/proc/sys".into()));
        let (m, _) = masked_and_readonly(false, &s(&["/x"]), &[]);
        assert_eq!(m, ["/x"]);
        assert_eq!(
            masked_and_readonly(true, &s(&["/x"]), &[]),
            (vec![], vec![])
        );
    }

    #[test]
    fn seccomp_choice_structured_and_legacy() {
        let p = |t: ProfileType, r: &str| SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        };
        let d = SeccompChoice::Unconfined;
        assert_eq!(
            seccomp_choice(Some(&p(ProfileType::RuntimeDefault, "")), "", d.clone()).unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            seccomp_choice(Some(&p(ProfileType::Localhost, "/p.json")), "", d.clone()).unwrap(),
            SeccompChoice::Localhost("/p.json".into())
        );
        assert!(seccomp_choice(Some(&p(ProfileType::Localhost, "")), "", d.clone()).is_err());
        assert_eq!(
            seccomp_choice(None, "runtime/default", d.clone()).unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            seccomp_choice(None, "localhost/a.json", d.clone()).unwrap(),
            SeccompChoice::Localhost("a.json".into())
        );
        assert_eq!(seccomp_choice(None, "", d.clone()).unwrap(), d);
        let caps = Capabilities::new();
        assert!(seccomp(&SeccompChoice::RuntimeDefault, true, &caps, None)
            .unwrap()
            .is_none());
        assert!(seccomp(&SeccompChoice::Localhost("x".into()), false, &caps, None).is_err());
    }

    #[test]
    fn devices_make_nodes_and_cgroup_rules() {
        let d = DeviceInfo {
            container_path: "/dev/fuse".into(),
            typ: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o20666,
            uid: 0,
            gid: 0,
            permissions: "rw".into(),
        };
        let (n, r) = devices(&[d]).unwrap();
        assert_eq!(
            (n[0].major(), n[0].minor(), n[0].file_mode()),
            (10, 229, Some(0o666))
        );
        assert_eq!(r[0].access().as_deref(), Some("rw"));
        assert!(r[0].allow());
    }
}
