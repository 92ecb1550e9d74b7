//! `ListMetricDescriptors` / `ListPodSandboxMetrics`: a few cAdvisor-named
//! metrics from `stats::` usage — container CPU time and memory working
//! set, pod network bytes — in CRI's metric format.

use crate::cri::*;
use crate::error::Result;
use crate::runtime::Runtime;

const CPU: &str = "container_cpu_usage_seconds_total";
const MEMORY: &str = "container_memory_working_set_bytes";
const RX: &str = "container_network_receive_bytes_total";
const TX: &str = "container_network_transmit_bytes_total";

const CONTAINER_LABELS: [&str; 3] = ["container", "pod", "namespace"];
const NETWORK_LABELS: [&str; 3] = ["interface", "pod", "namespace"];

pub(super) fn descriptors() -> Vec<MetricDescriptor> {
    let d = |name: &str, help: &str, keys: &[&str]| MetricDescriptor {
        name: name.into(),
        help: help.into(),
        label_keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    vec![
        d(
            CPU,
            "Cumulative cpu time consumed in seconds.",
            &CONTAINER_LABELS,
        ),
        d(MEMORY, "Current working set in bytes.", &CONTAINER_LABELS),
        d(RX, "Cumulative count of bytes received.", &NETWORK_LABELS),
        d(
            TX,
            "Cumulative count of bytes transmitted.",
            &NETWORK_LABELS,
        ),
    ]
}

fn metric(name: &str, ts: i64, kind: MetricType, labels: &[&str], value: u64) -> Metric {
    Metric {
        name: name.into(),
        timestamp: ts,
        metric_type: kind as i32,
        label_values: labels.iter().map(|l| l.to_string()).collect(),
        value: Some(UInt64Value { value }),
    }
}

pub(super) async fn list_pod_sandbox_metrics(rt: &Runtime) -> Result<Vec<PodSandboxMetrics>> {
    let mut out = vec![];
    for s in rt.sandboxes.list() {
        let u = match rt.pod_usage(s.id()).await {
            Ok(u) => u,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let meta = s.meta.config.metadata.clone().unwrap_or_default();
        let (pod, ns) = (meta.name.as_str(), meta.namespace.as_str());
        let metrics = u
            .interfaces
            .iter()
            .flat_map(|(ifname, [rx, _, tx, _])| {
                let labels = [ifname.as_str(), pod, ns];
                [
                    metric(RX, u.timestamp, MetricType::Counter, &labels, *rx),
                    metric(TX, u.timestamp, MetricType::Counter, &labels, *tx),
                ]
            })
            .collect();
        let mut container_metrics = vec![];
        for (cid, cu) in &u.containers {
            let Some(sample) = &cu.sample else { continue };
            let Ok(c) = rt.containers.get(cid) else {
                continue;
            };
            let name = c
                .meta
                .config
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let labels = [name.as_str(), pod, ns];
            let m = &sample.usage;
            container_metrics.push(ContainerMetrics {
                container_id: cid.clone(),
                metrics: vec![
                    metric(
                        CPU,
                        sample.timestamp,
                        MetricType::Counter,
                        &labels,
                        m.cpu_usage_ns / 1_000_000_000,
                    ),
                    metric(
                        MEMORY,
                        sample.timestamp,
                        MetricType::Gauge,
                        &labels,
                        m.memory_working_set,
                    ),
                ],
            });
        }
        out.push(PodSandboxMetrics {
            pod_sandbox_id: s.id().to_string(),
            metrics,
            container_metrics,
        });
    }
    Ok(out)
}
