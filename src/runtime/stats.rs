//! Container and pod resource usage for kubelet (`ContainerStats`,
//! `PodSandboxStats`): cgroup files, the snapshotter's usage of the writable
//! layer, and the pod's network counters. CPU rates are computed between two
//! samples kept per object.

use crate::error::Result;
use crate::runtime::Runtime;
use crate::util::platform::cgroup_usage as cgroup;
pub use cgroup::CgroupUsage;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub timestamp: i64,
    pub usage: CgroupUsage,
    /// CPU rate since the previous sample of the same object, in nanocores.
    pub nano_cores: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerUsage {
    pub sample: Option<Sample>,
    /// Writable layer (bytes, inodes).
    pub writable_layer: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct PodUsage {
    pub timestamp: i64,
    pub cpu_usage_ns: u64,
    pub nano_cores: Option<u64>,
    pub memory: CgroupUsage,
    pub process_count: u64,
    /// (interface, [rx bytes, rx errors, tx bytes, tx errors]).
    pub interfaces: Vec<(String, [u64; 4])>,
    pub containers: Vec<(String, ContainerUsage)>,
    /// Pressure of the pod's cgroup (its cgroup parent), when it has one.
    pub psi: cgroup::Psi,
}

/// The last (timestamp, cpu ns) per object, for rates.
#[derive(Default)]
pub struct CpuRates {
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl CpuRates {
    pub fn rate(&self, id: &str, timestamp: i64, cpu_ns: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap();
        let prev = last.insert(id.to_string(), (timestamp, cpu_ns));
        let (t0, c0) = prev?;
        let dt = timestamp.checked_sub(t0).filter(|d| *d > 0)? as u128;
        let dc = cpu_ns.checked_sub(c0)? as u128;
        Some((dc * 1_000_000_000 / dt) as u64)
    }

    pub fn forget(&self, id: &str) {
        self.last.lock().unwrap().remove(id);
    }
}

impl Runtime {
    /// Usage of a running container; empty for one that is not running.
    pub async fn container_usage(&self, id: &str) -> Result<ContainerUsage> {
        let c = self.containers.get(id)?;
        let st = c.status();
        let sample = (st.state == crate::container::ContainerState::Running)
            .then(|| self.sample(c.id(), st.pid))
            .flatten();
        let writable_layer = self
            .containerd
            .snapshot_usage(c.id())
            .await
            .ok()
            .map(|(b, i)| (b.max(0) as u64, i.max(0) as u64));
        Ok(ContainerUsage {
            sample,
            writable_layer,
        })
    }

    fn sample(&self, id: &str, pid: u32) -> Option<Sample> {
        let usage = cgroup::usage_of_pid(pid)?;
        let timestamp = crate::util::time::now_nanos();
        let nano_cores = self.cpu_rates.rate(id, timestamp, usage.cpu_usage_ns);
        Some(Sample {
            timestamp,
            usage,
            nano_cores,
        })
    }

    /// Usage of a pod: its containers (and pause) summed, its network counters.
    pub async fn pod_usage(&self, sandbox_id: &str) -> Result<PodUsage> {
        let s = self.sandboxes.get(sandbox_id)?;
        let timestamp = crate::util::time::now_nanos();
        let mut pod = PodUsage {
            timestamp,
            ..Default::default()
        };
        let pause_pid = s.status().pid;
        // The pod's cgroup: the parent of its first process's cgroup.
        let mut pod_cgroup = None;
        let mut add = |u: &CgroupUsage| {
            if pod_cgroup.is_none() {
                pod_cgroup = u
                    .unified_dir
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf);
            }
            pod.cpu_usage_ns += u.cpu_usage_ns;
            pod.memory.memory_usage += u.memory_usage;
            pod.memory.memory_working_set += u.memory_working_set;
            pod.memory.memory_rss += u.memory_rss;
            pod.memory.page_faults += u.page_faults;
            pod.memory.major_page_faults += u.major_page_faults;
            pod.process_count += u.pids;
        };
        if s.status().state == crate::sandbox::SandboxState::Ready && pause_pid > 0 {
            if let Some(u) = cgroup::usage_of_pid(pause_pid) {
                add(&u);
            }
        }
        let mut containers = vec![];
        for c in self.containers.in_sandbox(s.id()) {
            let u = self.container_usage(c.id()).await?;
            if let Some(sample) = &u.sample {
                add(&sample.usage);
            }
            containers.push((c.id().to_string(), u));
        }
        let has_pod_cgroup = s
            .meta
            .config
            .linux
            .as_ref()
            .is_some_and(|l| !l.cgroup_parent.is_empty());
        if let Some(dir) = pod_cgroup.filter(|_| has_pod_cgroup) {
            pod.psi = cgroup::psi_of(&dir);
        }
        pod.containers = containers;
        pod.nano_cores = self.cpu_rates.rate(s.id(), timestamp, pod.cpu_usage_ns);
        // The pod's interfaces: through the pause process, or from inside
        // the pinned netns when there is none.
        let net_dev = match (&s.meta.netns_path, pause_pid) {
            (None, _) => None,
            (Some(_), pid) if pid > 0 => {
                std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()
            }
            (Some(netns), _) => crate::network::netns::run_in(netns, || {
                std::fs::read_to_string("/proc/thread-self/net/dev")
            })
            .ok()
            .and_then(|r| r.ok()),
        };
        if let Some(text) = net_dev {
            pod.interfaces = cgroup::parse_net_dev(&text)
                .into_iter()
                .filter(|(n, _)| n != "lo")
                .collect();
        }
        Ok(pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_needs_two_samples() {
        let r = CpuRates::default();
        assert_eq!(r.rate("a", 1_000_000_000, 0), None);
        // Half a core over one second.
        assert_eq!(r.rate("a", 2_000_000_000, 500_000_000), Some(500_000_000));
        assert_eq!(
            r.rate("a", 2_000_000_000, 600_000_000),
            None,
            "no time passed"
        );
    }
}
