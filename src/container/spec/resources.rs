//! CRI `LinuxContainerResources` → OCI `LinuxResources` (also used by
//! UpdateContainerResources and the pause container). Zero/empty CRI fields
//! mean "not set".

use crate::cri::LinuxContainerResources;
use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

pub fn resources_to_oci(r: &LinuxContainerResources) -> LinuxResources {
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if r.cpu_shares > 0 {
        cpu.set_shares(Some(r.cpu_shares as u64));
        any_cpu = true;
    }
    if r.cpu_quota > 0 {
        cpu.set_quota(Some(r.cpu_quota));
        any_cpu = true;
    }
    if r.cpu_period > 0 {
        cpu.set_period(Some(r.cpu_period as u64));
        any_cpu = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(r.cpuset_cpus.clone()));
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu.set_mems(Some(r.cpuset_mems.clone()));
        any_cpu = true;
    }
    let mut out = LinuxResources::default();
    if any_cpu {
        out.set_cpu(Some(cpu));
    }
    if r.memory_limit_in_bytes > 0 {
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(r.memory_limit_in_bytes));
        // No swap beyond the limit unless the pod asks for more.
        let swap = if r.memory_swap_limit_in_bytes > 0 {
            r.memory_swap_limit_in_bytes
        } else {
            r.memory_limit_in_bytes
        };
        mem.set_swap(Some(swap));
        out.set_memory(Some(mem));
    }
    if !r.hugepage_limits.is_empty() {
        let limits = r
            .hugepage_limits
            .iter()
            .map(|h| {
                let mut l = LinuxHugepageLimit::default();
                l.set_page_size(h.page_size.clone());
                l.set_limit(h.limit.min(i64::MAX as u64) as i64);
                l
            })
            .collect();
        out.set_hugepage_limits(Some(limits));
    }
    if !r.unified.is_empty() {
        out.set_unified(Some(r.unified.clone().into_iter().collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::HugepageLimit;

    #[test]
    fn maps_every_set_field() {
        let r = LinuxContainerResources {
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            memory_limit_in_bytes: 1 << 28,
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 1 << 21,
            }],
            unified: [("memory.high".to_string(), "100M".to_string())].into(),
            ..Default::default()
        };
        let o = resources_to_oci(&r);
        let cpu = o.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
        let mem = o.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(1 << 28), Some(1 << 28)));
        let hp = &o.hugepage_limits().as_ref().unwrap()[0];
        assert_eq!((hp.page_size().as_str(), hp.limit()), ("2MB", 1 << 21));
        assert_eq!(o.unified().as_ref().unwrap()["memory.high"], "100M");
    }

    #[test]
    fn unset_fields_stay_unset() {
        let o = resources_to_oci(&LinuxContainerResources::default());
        assert!(o.cpu().is_none() && o.memory().is_none() && o.unified().is_none());
    }
}
