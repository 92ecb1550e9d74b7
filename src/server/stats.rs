//! CRI stats messages from `stats::` usage.

use crate::cri::*;
use crate::error::Result;
use crate::runtime::stats::{ContainerUsage, PodUsage};
use crate::runtime::Runtime;
use crate::util::platform::cgroup_usage::{Pressure, Psi, PsiLine};

fn u64v(v: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value: v })
}

/// A pressure file as CRI's `PsiStats` (totals in nanoseconds).
fn psi_stats(p: &Option<Pressure>) -> Option<PsiStats> {
    let data = |l: &PsiLine| PsiData {
        total: l.total_us.saturating_mul(1000),
        avg10: l.avg10,
        avg60: l.avg60,
        avg300: l.avg300,
    };
    p.as_ref().map(|p| PsiStats {
        some: Some(data(&p.some)),
        full: p.full.as_ref().map(data),
    })
}

fn io_usage(timestamp: i64, psi: &Psi) -> Option<IoUsage> {
    psi.io.as_ref().map(|_| IoUsage {
        timestamp,
        psi: psi_stats(&psi.io),
    })
}

fn container_attributes(rt: &Runtime, id: &str) -> Result<ContainerAttributes> {
    let c = rt.containers.get(id)?;
    let cfg = &c.meta.config;
    Ok(ContainerAttributes {
        id: c.id().to_string(),
        metadata: cfg.metadata.clone(),
        labels: cfg.labels.clone(),
        annotations: cfg.annotations.clone(),
    })
}

fn container_stats_message(
    attributes: ContainerAttributes,
    u: &ContainerUsage,
    mountpoint: &str,
) -> ContainerStats {
    let (cpu, memory) = match &u.sample {
        Some(s) => {
            let m = &s.usage;
            (
                Some(CpuUsage {
                    timestamp: s.timestamp,
                    usage_core_nano_seconds: u64v(m.cpu_usage_ns),
                    usage_nano_cores: s.nano_cores.and_then(u64v),
                    psi: psi_stats(&m.psi.cpu),
                }),
                Some(MemoryUsage {
                    timestamp: s.timestamp,
                    working_set_bytes: u64v(m.memory_working_set),
                    available_bytes: m
                        .memory_limit
                        .map(|l| l.saturating_sub(m.memory_working_set))
                        .and_then(u64v),
                    usage_bytes: u64v(m.memory_usage),
                    rss_bytes: u64v(m.memory_rss),
                    page_faults: u64v(m.page_faults),
                    major_page_faults: u64v(m.major_page_faults),
                    psi: psi_stats(&m.psi.memory),
                }),
            )
        }
        None => (None, None),
    };
    let io = u
        .sample
        .as_ref()
        .and_then(|s| io_usage(s.timestamp, &s.usage.psi));
    let now = crate::util::time::now_nanos();
    ContainerStats {
        attributes: Some(attributes),
        cpu,
        memory,
        io,
        writable_layer: u.writable_layer.map(|(bytes, inodes)| FilesystemUsage {
            timestamp: now,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: mountpoint.to_string(),
            }),
            used_bytes: u64v(bytes),
            inodes_used: u64v(inodes),
        }),
        swap: None,
    }
}

pub(super) async fn container_stats(rt: &Runtime, id: &str) -> Result<ContainerStats> {
    let attributes = container_attributes(rt, id)?;
    let u = rt.container_usage(&attributes.id).await?;
    Ok(container_stats_message(
        attributes,
        &u,
        &rt.snapshotter_mountpoint().await,
    ))
}

pub(super) async fn list_container_stats(
    rt: &Runtime,
    f: ContainerStatsFilter,
) -> Result<Vec<ContainerStats>> {
    let mut out = vec![];
    for c in rt.containers.list() {
        let cfg = &c.meta.config;
        if (!f.id.is_empty() && !c.id().starts_with(&f.id))
            || (!f.pod_sandbox_id.is_empty() && !c.meta.sandbox_id.starts_with(&f.pod_sandbox_id))
            || !super::convert::labels_match(&cfg.labels, &f.label_selector)
        {
            continue;
        }
        match container_stats(rt, c.id()).await {
            Ok(s) => out.push(s),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

async fn pod_stats_message(rt: &Runtime, id: &str, u: PodUsage) -> Result<PodSandboxStats> {
    let s = rt.sandboxes.get(id)?;
    let mountpoint = rt.snapshotter_mountpoint().await;
    let m = &u.memory;
    let interfaces: Vec<NetworkInterfaceUsage> = u
        .interfaces
        .iter()
        .map(|(name, [rx, rxe, tx, txe])| NetworkInterfaceUsage {
            name: name.clone(),
            rx_bytes: u64v(*rx),
            rx_errors: u64v(*rxe),
            tx_bytes: u64v(*tx),
            tx_errors: u64v(*txe),
        })
        .collect();
    // As containerd: network usage only together with a default interface
    // (kubelet dereferences it), so none for a host-network or stopped pod.
    let ready = s.status().state == crate::sandbox::SandboxState::Ready;
    let network = interfaces
        .iter()
        .find(|i| i.name == "eth0")
        .filter(|_| ready)
        .cloned()
        .map(|default_interface| NetworkUsage {
            timestamp: u.timestamp,
            default_interface: Some(default_interface),
            interfaces,
        });
    let containers = u
        .containers
        .iter()
        .filter_map(|(cid, cu)| {
            container_attributes(rt, cid)
                .ok()
                .map(|a| container_stats_message(a, cu, &mountpoint))
        })
        .collect();
    Ok(PodSandboxStats {
        attributes: Some(PodSandboxAttributes {
            id: s.id().to_string(),
            metadata: s.meta.config.metadata.clone(),
            labels: s.meta.config.labels.clone(),
            annotations: s.meta.config.annotations.clone(),
        }),
        linux: Some(LinuxPodSandboxStats {
            cpu: Some(CpuUsage {
                timestamp: u.timestamp,
                usage_core_nano_seconds: u64v(u.cpu_usage_ns),
                usage_nano_cores: u.nano_cores.and_then(u64v),
                psi: psi_stats(&u.psi.cpu),
            }),
            memory: Some(MemoryUsage {
                timestamp: u.timestamp,
                working_set_bytes: u64v(m.memory_working_set),
                available_bytes: None,
                usage_bytes: u64v(m.memory_usage),
                rss_bytes: u64v(m.memory_rss),
                page_faults: u64v(m.page_faults),
                major_page_faults: u64v(m.major_page_faults),
                psi: psi_stats(&u.psi.memory),
            }),
            network,
            process: Some(ProcessUsage {
                timestamp: u.timestamp,
                process_count: u64v(u.process_count),
            }),
            containers,
            io: io_usage(u.timestamp, &u.psi),
        }),
        windows: None,
    })
}

pub(super) async fn pod_sandbox_stats(rt: &Runtime, id: &str) -> Result<PodSandboxStats> {
    let s = rt.sandboxes.get(id)?;
    let u = rt.pod_usage(s.id()).await?;
    pod_stats_message(rt, s.id(), u).await
}

pub(super) async fn list_pod_sandbox_stats(
    rt: &Runtime,
    f: PodSandboxStatsFilter,
) -> Result<Vec<PodSandboxStats>> {
    let mut out = vec![];
    for s in rt.sandboxes.list() {
        // As containerd: only ready sandboxes have stats to list.
        if s.status().state != crate::sandbox::SandboxState::Ready
            || (!f.id.is_empty() && !s.id().starts_with(&f.id))
            || !super::convert::labels_match(&s.meta.config.labels, &f.label_selector)
        {
            continue;
        }
        match pod_sandbox_stats(rt, s.id()).await {
            Ok(st) => out.push(st),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
