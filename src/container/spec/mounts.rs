//! Container mounts: the defaults every container gets, the sandbox's
//! /etc files, and the CRI mounts (with propagation).

use crate::cri::{Mount as CriMount, MountPropagation};
use crate::error::{Error, Result};
use oci_spec::runtime::Mount;
use std::path::Path;

pub(crate) fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some(typ.into()));
    m.set_source(Some(src.into()));
    m.set_options(Some(opts.iter().map(|o| o.to_string()).collect()));
    m
}

pub(crate) fn bind(dest: &str, src: &Path, ro: bool) -> Mount {
    let mode = if ro { "ro" } else { "rw" };
    mount(
        dest,
        "bind",
        &src.to_string_lossy(),
        &["rbind", "rprivate", mode],
    )
}

/// /proc, /dev, /dev/pts, /dev/mqueue, /sys, /sys/fs/cgroup and /dev/shm
/// (`shm` = the sandbox's shm to bind, None = a private tmpfs).
pub fn default_mounts(privileged: bool, shm: Option<&Path>) -> Vec<Mount> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ];
    v.push(match shm {
        Some(p) => bind("/dev/shm", p, false),
        None => mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    });
    v
}

/// Propagation option of a CRI mount and the rootfs propagation it needs.
fn propagation(p: i32) -> Result<(&'static str, Option<&'static str>)> {
    match MountPropagation::try_from(p) {
        Ok(MountPropagation::PropagationPrivate) => Ok(("rprivate", None)),
        Ok(MountPropagation::PropagationHostToContainer) => Ok(("rslave", Some("rslave"))),
        Ok(MountPropagation::PropagationBidirectional) => Ok(("rshared", Some("rshared"))),
        Err(_) => Err(Error::invalid(format!(
            "mounts.propagation: unknown value {p}"
        ))),
    }
}

/// CRI mounts as OCI bind mounts, plus the rootfs propagation they require
/// (`rshared` wins over `rslave`). A recursive read-only mount (`rro`: every
/// submount read-only too) must be read-only and private, and needs a
/// runtime handler that supports it (`rro_supported`), as in containerd.
pub fn cri_mounts(
    mounts: &[CriMount],
    rro_supported: bool,
) -> Result<(Vec<Mount>, Option<&'static str>)> {
    let mut out = Vec::new();
    let mut rootfs: Option<&'static str> = None;
    for m in mounts {
        if m.container_path.is_empty() || !m.container_path.starts_with('/') {
            return Err(Error::invalid(format!(
                "mounts.container_path: {:?} is not absolute",
                m.container_path
            )));
        }
        if m.host_path.is_empty() {
            return Err(Error::invalid(format!(
                "mounts.host_path: empty for {}",
                m.container_path
            )));
        }
        let (prop, need) = propagation(m.propagation)?;
        if need == Some("rshared") || (need == Some("rslave") && rootfs.is_none()) {
            rootfs = need;
        }
        let mode = match (m.readonly, m.recursive_read_only) {
            (false, false) => "rw",
            (true, false) => "ro",
            (false, true) => {
                return Err(Error::invalid(format!(
                    "mounts: recursive_read_only needs readonly ({})",
                    m.container_path
                )))
            }
            (true, true) if prop != "rprivate" => {
                return Err(Error::invalid(format!(
                    "mounts: recursive_read_only needs private propagation ({})",
                    m.container_path
                )))
            }
            (true, true) if !rro_supported => {
                return Err(Error::precondition(format!(
                    "mounts: the runtime handler does not support recursive read-only mounts ({})",
                    m.container_path
                )))
            }
            (true, true) => "rro",
        };
        out.push(mount(
            &m.container_path,
            "bind",
            &m.host_path,
            &["rbind", prop, mode],
        ));
    }
    Ok((out, rootfs))
}

/// Assemble: defaults, then sandbox files, then CRI mounts; a later mount
/// to the same destination replaces an earlier one; sorted by depth so
/// parents are mounted before children (stable for equal depth).
pub fn assemble(defaults: Vec<Mount>, files: Vec<Mount>, cri: Vec<Mount>) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for m in defaults.into_iter().chain(files).chain(cri) {
        out.retain(|o| o.destination() != m.destination());
        out.push(m);
    }
    out.sort_by_key(|m| m.destination().components().count());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap()
    }

    #[test]
    fn defaults_are_ro_sysfs_unless_privileged_and_shm_binds_sandbox() {
        let d = default_mounts(false, Some(Path::new("/sb/shm")));
        let sys = d
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert!(opts(sys).contains(&"ro".into()));
        let shm = d
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap();
        assert_eq!(shm.source().as_deref(), Some(Path::new("/sb/shm")));
        let d = default_mounts(true, None);
        let cg = d
            .iter()
            .find(|m| m.destination() == Path::new("/sys/fs/cgroup"))
            .unwrap();
        assert!(opts(cg).contains(&"rw".into()));
        let shm = d
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap();
        assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
    }

    #[test]
    fn cri_mounts_map_readonly_and_propagation() {
        let m = |c: &str, p: MountPropagation, ro| CriMount {
            container_path: c.into(),
            host_path: "/h".into(),
            readonly: ro,
            propagation: p as i32,
            ..Default::default()
        };
        let (v, root) = cri_mounts(
            &[m("/a", MountPropagation::PropagationPrivate, true)],
            false,
        )
        .unwrap();
        assert_eq!(opts(&v[0]), ["rbind", "rprivate", "ro"]);
        assert_eq!(root, None);
        let (v, root) = cri_mounts(
            &[
                m("/b", MountPropagation::PropagationBidirectional, false),
                m("/c", MountPropagation::PropagationHostToContainer, false),
            ],
            false,
        )
        .unwrap();
        assert_eq!(opts(&v[0]), ["rbind", "rshared", "rw"]);
        assert_eq!(opts(&v[1]), ["rbind", "rslave", "rw"]);
        assert_eq!(root, Some("rshared"));
        assert!(cri_mounts(
            &[m("rel", MountPropagation::PropagationPrivate, false)],
            false
        )
        .is_err());
    }

    #[test]
    fn recursive_read_only_needs_readonly_private_and_a_runtime_that_has_it() {
        let m = |ro: bool, p: MountPropagation| CriMount {
            container_path: "/data".into(),
            host_path: "/h".into(),
            readonly: ro,
            recursive_read_only: true,
            propagation: p as i32,
            ..Default::default()
        };
        let private = MountPropagation::PropagationPrivate;
        let (v, _) = cri_mounts(&[m(true, private)], true).unwrap();
        assert_eq!(opts(&v[0]), ["rbind", "rprivate", "rro"]);
        let code = |r: Result<(Vec<Mount>, Option<&str>)>| r.unwrap_err().code();
        assert_eq!(
            code(cri_mounts(&[m(true, private)], false)),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            code(cri_mounts(&[m(false, private)], true)),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(cri_mounts(
                &[m(true, MountPropagation::PropagationHostToContainer)],
                true
            )),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn assemble_overrides_same_destination_and_sorts_by_depth() {
        let a = mount("/etc/hosts", "bind", "/sb/hosts", &[]);
        let b = mount("/etc/hosts", "bind", "/user/hosts", &[]);
        let deep = mount("/a/b/c", "bind", "/x", &[]);
        let top = mount("/a", "bind", "/y", &[]);
        let v = assemble(vec![], vec![a], vec![deep, b, top]);
        let dests: Vec<_> = v
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_string())
            .collect();
        assert_eq!(dests, ["/a", "/etc/hosts", "/a/b/c"]);
        assert_eq!(v[1].source().as_deref(), Some(Path::new("/user/hosts")));
    }
}
