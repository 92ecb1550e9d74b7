//! What becomes of the limits the node's cgroups cannot apply
//! (`util::platform::cgroups`), as `missing_cgroup_controllers` says: left out of
//! the OCI resources (`fit_to_node`, for CreateContainer, the pause
//! container and UpdateContainerResources, on either cgroup driver), or
//! refused before anything is changed (`check_node_applies`). Limits the
//! node can apply stay as asked, hugepage limits of 0 included (kubelet
//! forbids a container hugepages that way).

use crate::config::MissingCgroupControllers;
use crate::cri::LinuxContainerResources;
use crate::error::{Error, Result};
use crate::util::platform::cgroups::{Cgroups, Controller};
use oci_spec::runtime::{LinuxCpu, LinuxResources};
use std::collections::BTreeSet;

/// Leave out of `res` every limit the node's cgroups cannot apply (runc
/// would fail the container's start on it) and return their kinds; each
/// kind is logged once per process, at debug. The memory limit always stays.
pub fn fit_to_node(res: &mut LinuxResources, node: &Cgroups) -> BTreeSet<Controller> {
    let mut dropped = BTreeSet::new();
    let mut dropping = |kind: Controller, what: &str| {
        node.log_dropped_once(kind, what);
        dropped.insert(kind);
    };
    if !node.has(Controller::Hugetlb) && res.hugepage_limits().is_some() {
        res.set_hugepage_limits(None);
        dropping(Controller::Hugetlb, "hugepage limits");
    }
    if let Some(mem) = res.memory_mut() {
        if !node.has(Controller::MemorySwap) && mem.swap().is_some() {
            mem.set_swap(None);
            dropping(Controller::MemorySwap, "memory swap limit");
        }
    }
    if let Some(cpu) = res.cpu_mut() {
        if !node.has(Controller::CpuQuota)
            && (cpu.quota().is_some() || cpu.period().is_some() || cpu.burst().is_some())
        {
            cpu.set_quota(None);
            cpu.set_period(None);
            cpu.set_burst(None);
            dropping(Controller::CpuQuota, "cpu quota and period");
        }
        if !node.has(Controller::CpuRealtime)
            && (cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some())
        {
            cpu.set_realtime_runtime(None);
            cpu.set_realtime_period(None);
            dropping(Controller::CpuRealtime, "cpu real-time runtime and period");
        }
        if !node.has(Controller::Cpuset) && (cpu.cpus().is_some() || cpu.mems().is_some()) {
            cpu.set_cpus(None);
            cpu.set_mems(None);
            dropping(Controller::Cpuset, "cpuset cpus and mems");
        }
        if *cpu == LinuxCpu::default() {
            res.set_cpu(None);
        }
    }
    if !node.has(Controller::Pids) && res.pids().is_some() {
        res.set_pids(None);
        dropping(Controller::Pids, "pids limit");
    }
    if !node.has(Controller::Io) && res.block_io().is_some() {
        res.set_block_io(None);
        dropping(Controller::Io, "block io limits");
    }
    if !node.has(Controller::Rdma) && res.rdma().is_some() {
        res.set_rdma(None);
        dropping(Controller::Rdma, "rdma limits");
    }
    if let Some(unified) = res.unified_mut() {
        unified.retain(|key, _| match node.unified_key_lacks(key) {
            Some((kind, _)) => {
                dropping(kind, &format!("unified entries such as {key:?}"));
                false
            }
            None => true,
        });
        if unified.is_empty() {
            res.set_unified(None);
        }
    }
    dropped
}

/// With `missing_cgroup_controllers = "refuse"`: FailedPrecondition naming
/// the field and the controller when `r` (the CRI resources at `field`) asks
/// for a limit the host's cgroups cannot apply. Callers check before they
/// change anything.
pub fn check_node_applies(
    policy: MissingCgroupControllers,
    field: &str,
    r: Option<&LinuxContainerResources>,
) -> Result<()> {
    match (policy, r) {
        (MissingCgroupControllers::Refuse, Some(r)) => {
            refuse_unapplicable(field, r, Cgroups::host())
        }
        _ => Ok(()),
    }
}

/// The check of `check_node_applies`, for a given node.
pub fn refuse_unapplicable(field: &str, r: &LinuxContainerResources, node: &Cgroups) -> Result<()> {
    let refuse = |asked: String, lacks: &str| {
        Err(Error::precondition(format!(
            "{field}.{asked} needs {lacks}, which this node lacks ({}); \
             missing_cgroup_controllers = \"drop\" would leave it out",
            node.mode
        )))
    };
    let lacks = |kind: Controller| !node.has(kind);
    if !r.hugepage_limits.is_empty() && lacks(Controller::Hugetlb) {
        let sizes: Vec<&str> = r
            .hugepage_limits
            .iter()
            .map(|h| h.page_size.as_str())
            .collect();
        return refuse(
            format!("hugepage_limits ({})", sizes.join(", ")),
            Controller::Hugetlb.describe(),
        );
    }
    if r.memory_swap_limit_in_bytes > 0 && lacks(Controller::MemorySwap) {
        return refuse(
            "memory_swap_limit_in_bytes".into(),
            Controller::MemorySwap.describe(),
        );
    }
    for (name, set) in [
        ("cpu_quota", r.cpu_quota > 0),
        ("cpu_period", r.cpu_period > 0),
    ] {
        if set && lacks(Controller::CpuQuota) {
            return refuse(name.into(), Controller::CpuQuota.describe());
        }
    }
    for (name, value) in [
        ("cpuset_cpus", &r.cpuset_cpus),
        ("cpuset_mems", &r.cpuset_mems),
    ] {
        if !value.is_empty() && lacks(Controller::Cpuset) {
            return refuse(name.into(), Controller::Cpuset.describe());
        }
    }
    let mut keys: Vec<&String> = r.unified.keys().collect();
    keys.sort();
    for key in keys {
        if let Some((_, lacks)) = node.unified_key_lacks(key) {
            return refuse(format!("unified[{key:?}]"), &lacks);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::resources_to_oci;
    use crate::cri::HugepageLimit;
    use crate::util::platform::cgroups::Mode;

    /// kubelet's hugepage limits: every page size of the node, limit 0.
    fn kubelet_resources() -> LinuxContainerResources {
        LinuxContainerResources {
            cpu_shares: 2,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            memory_limit_in_bytes: 1 << 28,
            hugepage_limits: ["2MB", "1GB"]
                .map(|s| HugepageLimit {
                    page_size: s.into(),
                    limit: 0,
                })
                .into(),
            ..Default::default()
        }
    }

    /// This host: hybrid, no v1 hugetlb, no memsw.
    fn hybrid_without_hugetlb() -> Cgroups {
        use Controller::*;
        Cgroups::only(
            Mode::Hybrid,
            &[Pids, Cpuset, CpuQuota, CpuRealtime, Io],
            &[],
        )
    }

    #[test]
    fn zero_hugepage_limits_stay_where_the_controller_is() {
        let mut o = resources_to_oci(&kubelet_resources());
        assert!(fit_to_node(&mut o, &Cgroups::everything()).is_empty());
        let hp = o.hugepage_limits().as_ref().unwrap();
        assert_eq!(hp.len(), 2);
        assert!(hp.iter().all(|h| h.limit() == 0));
    }

    #[test]
    fn drop_leaves_out_what_the_node_lacks_and_keeps_the_rest() {
        let mut o = resources_to_oci(&kubelet_resources());
        let dropped = fit_to_node(&mut o, &hybrid_without_hugetlb());
        assert_eq!(
            dropped,
            [Controller::Hugetlb, Controller::MemorySwap].into()
        );
        assert!(o.hugepage_limits().is_none());
        let mem = o.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(1 << 28), None));
        let cpu = o.cpu().as_ref().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    }

    #[test]
    fn drop_covers_every_kind() {
        use oci_spec::runtime::{LinuxBlockIo, LinuxPids};
        let mut o = resources_to_oci(&LinuxContainerResources {
            cpuset_cpus: "0".into(),
            unified: [
                ("memory.high".to_string(), "1G".to_string()),
                ("hugetlb.2MB.max".to_string(), "0".to_string()),
            ]
            .into(),
            ..kubelet_resources()
        });
        let mut cpu = o.cpu().clone().unwrap();
        cpu.set_realtime_runtime(Some(1000));
        o.set_cpu(Some(cpu));
        o.set_pids(Some(LinuxPids::default()));
        o.set_block_io(Some(LinuxBlockIo::default()));
        o.set_rdma(Some(Default::default()));
        // A v2 node with the memory controller only.
        let node = Cgroups::only(Mode::V2, &[Controller::Unified], &["memory"]);
        let dropped = fit_to_node(&mut o, &node);
        use Controller::*;
        assert_eq!(
            dropped,
            [
                Hugetlb,
                MemorySwap,
                Pids,
                Cpuset,
                CpuQuota,
                CpuRealtime,
                Io,
                Rdma
            ]
            .into()
        );
        let cpu = o.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(2));
        assert!(cpu.quota().is_none() && cpu.cpus().is_none() && cpu.realtime_runtime().is_none());
        assert!(o.pids().is_none() && o.block_io().is_none() && o.rdma().is_none());
        let unified = o.unified().as_ref().unwrap();
        assert_eq!(unified.keys().collect::<Vec<_>>(), ["memory.high"]);
        assert_eq!(o.memory().as_ref().unwrap().limit(), Some(1 << 28));
        // On v1 and hybrid nodes no unified entry stays.
        let mut o = resources_to_oci(&LinuxContainerResources {
            unified: [("memory.high".to_string(), "1G".to_string())].into(),
            ..Default::default()
        });
        assert_eq!(
            fit_to_node(&mut o, &hybrid_without_hugetlb()),
            [Unified].into()
        );
        assert!(o.unified().is_none());
    }

    #[test]
    fn refuse_names_the_field_and_the_controller() {
        let node = hybrid_without_hugetlb();
        let e =
            refuse_unapplicable("config.linux.resources", &kubelet_resources(), &node).unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        let msg = e.to_string();
        assert!(
            msg.contains("config.linux.resources.hugepage_limits (2MB, 1GB)")
                && msg.contains("hugetlb controller")
                && msg.contains("hybrid"),
            "{msg}"
        );
        // crid's own "no swap beyond the limit" is not asked for: no refusal.
        let r = LinuxContainerResources {
            hugepage_limits: vec![],
            ..kubelet_resources()
        };
        refuse_unapplicable("linux", &r, &node).unwrap();
        let r = LinuxContainerResources {
            memory_swap_limit_in_bytes: 1 << 29,
            ..r
        };
        let msg = refuse_unapplicable("linux", &r, &node)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("linux.memory_swap_limit_in_bytes needs swap accounting"),
            "{msg}"
        );
        let r = LinuxContainerResources {
            unified: [("pids.max".to_string(), "10".to_string())].into(),
            ..Default::default()
        };
        let msg = refuse_unapplicable("linux", &r, &node)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("linux.unified[\"pids.max\"] needs cgroup v2"),
            "{msg}"
        );
        refuse_unapplicable("linux", &kubelet_resources(), &Cgroups::everything()).unwrap();
    }

    #[test]
    fn drop_policy_never_refuses() {
        check_node_applies(
            MissingCgroupControllers::Drop,
            "linux",
            Some(&kubelet_resources()),
        )
        .unwrap();
        check_node_applies(MissingCgroupControllers::Refuse, "linux", None).unwrap();
    }
}
