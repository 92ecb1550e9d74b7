//! Pod user namespaces (KEP-127, `hostUsers: false`): the id mapping a pod
//! asks for, read from its (validated) CRI config. Pure; the namespace
//! itself is pinned by `network::netns` beside it (network/ owns the pod's
//! namespaces), and the files a pod's containers see are given to the
//! mapped ids by `container::rootfs` and `sandbox::files`.

use crate::cri::{NamespaceMode, NamespaceOption, PodSandboxConfig};
use serde::{Deserialize, Serialize};

/// One contiguous id range: `container_id..container_id+size` inside is
/// `host_id..host_id+size` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl IdMap {
    /// The host id of `id` inside, if it is mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        let off = id.checked_sub(self.container_id)?;
        (off < self.size).then(|| self.host_id + off)
    }

    /// `/proc/<pid>/uid_map` (or `gid_map`) content.
    pub fn proc_map_line(&self) -> String {
        format!("{} {} {}\n", self.container_id, self.host_id, self.size)
    }
}

/// The user namespace of a pod (`NamespaceMode::POD`): one uid and one gid
/// range, both mapping container id 0 (`cri::validate::user_namespace` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodUserns {
    pub uids: IdMap,
    pub gids: IdMap,
}

impl PodUserns {
    /// Host uid and gid of the pod's root.
    pub fn root(&self) -> (u32, u32) {
        (self.uids.host_id, self.gids.host_id)
    }

    /// A short name for the mapping, usable in snapshot keys.
    pub fn key(&self) -> String {
        let m = |i: &IdMap| format!("{}-{}-{}", i.container_id, i.host_id, i.size);
        format!("u{}-g{}", m(&self.uids), m(&self.gids))
    }
}

#[cfg(test)]
impl PodUserns {
    /// The mapping the unit tests use: 65536 ids from container id 0, uids
    /// at host 100000 and gids at host 200000.
    pub(crate) fn for_tests() -> PodUserns {
        let map = |host_id| IdMap {
            container_id: 0,
            host_id,
            size: 65536,
        };
        PodUserns {
            uids: map(100_000),
            gids: map(200_000),
        }
    }
}

/// The mapping of a namespace option in POD mode; `None` for the node's
/// user namespace. Assumes the option passed `cri::validate::user_namespace`.
pub fn of_namespace_option(ns: Option<&NamespaceOption>) -> Option<PodUserns> {
    let u = ns?.userns_options.as_ref()?;
    if u.mode != NamespaceMode::Pod as i32 {
        return None;
    }
    let one = |v: &[crate::cri::IdMapping]| {
        let [m] = v else { return None };
        Some(IdMap {
            container_id: m.container_id,
            host_id: m.host_id,
            size: m.length,
        })
    };
    Some(PodUserns {
        uids: one(&u.uids)?,
        gids: one(&u.gids)?,
    })
}

/// The pod's user namespace mapping, if it asks for one of its own.
pub fn of_pod(config: &PodSandboxConfig) -> Option<PodUserns> {
    of_namespace_option(
        config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_inside_the_range_only() {
        let m = IdMap {
            container_id: 0,
            host_id: 100_000,
            size: 65536,
        };
        assert_eq!(m.to_host(0), Some(100_000));
        assert_eq!(m.to_host(65535), Some(165_535));
        assert_eq!(m.to_host(65536), None);
        assert_eq!(m.proc_map_line(), "0 100000 65536\n");
    }
}
