//! crid's own Prometheus metrics: RPC counts and latencies per method and
//! code, pod start latency by phase, image pulls, pod and container gauges.
//! One process-wide registry (`global()`), recorded into from the gRPC edge
//! and a few domain points, rendered in the Prometheus text format by hand;
//! `http` serves it on `metrics_address`. Knows nothing of containerd or CRI.

pub mod http;
pub mod phases;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Count per bucket (not cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += s;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (method, code) → latency; the request counter is its count.
    rpcs: BTreeMap<(String, String), Histogram>,
    /// Pod start phase → latency.
    phases: BTreeMap<&'static str, Histogram>,
    /// Pull result (`success`, `failure`) → latency.
    pulls: BTreeMap<&'static str, Histogram>,
    pull_bytes: u64,
    /// How downloaded layers reached containerd (`direct`, `streamed`) → count.
    layers: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Current object counts, gathered by the caller at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// (state, count)
    pub pods: Vec<(String, u64)>,
    pub containers: Vec<(String, u64)>,
    pub event_subscribers: u64,
}

pub fn global() -> &'static Metrics {
    static M: LazyLock<Metrics> = LazyLock::new(Metrics::default);
    &M
}

/// Record a pod start phase that began at `since` (`netns`, `cni`,
/// `pause_task`, `container_create`, `container_start`).
pub fn phase(name: &'static str, since: Instant) {
    global().observe_phase(name, since.elapsed());
}

/// gRPC code name as Prometheus exporters spell it: `OK`, `NOT_FOUND`.
pub fn code_name(code: tonic::Code) -> String {
    let debug = format!("{code:?}");
    let mut out = String::new();
    for (i, ch) in debug.chars().enumerate() {
        if i > 0 && ch.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn observe_rpc(&self, method: &str, code: tonic::Code, d: Duration) {
        self.lock()
            .rpcs
            .entry((method.to_string(), code_name(code)))
            .or_default()
            .observe(d);
    }

    pub fn observe_phase(&self, phase: &'static str, d: Duration) {
        self.lock().phases.entry(phase).or_default().observe(d);
    }

    pub fn observe_pull(&self, ok: bool, d: Duration, bytes: u64) {
        let mut m = self.lock();
        let result = if ok { "success" } else { "failure" };
        m.pulls.entry(result).or_default().observe(d);
        m.pull_bytes += bytes;
    }

    /// A downloaded layer is in containerd's store: written there by crid
    /// (`direct`) or streamed over `Content.Write` (`streamed`).
    pub fn observe_layer_stored(&self, path: &'static str) {
        *self.lock().layers.entry(path).or_default() += 1;
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let m = self.lock();
        let mut out = String::new();
        out.push_str("# HELP crid_grpc_requests_total CRI RPCs handled, by method and gRPC code.\n# TYPE crid_grpc_requests_total counter\n");
        for ((method, code), h) in &m.rpcs {
            let _ = writeln!(
                out,
                "crid_grpc_requests_total{{method=\"{method}\",code=\"{code}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP crid_grpc_request_duration_seconds CRI RPC latency, by method and gRPC code.\n# TYPE crid_grpc_request_duration_seconds histogram\n");
        for ((method, code), h) in &m.rpcs {
            let labels = format!("method=\"{method}\",code=\"{code}\"");
            h.render(&mut out, "crid_grpc_request_duration_seconds", &labels);
        }
        out.push_str("# HELP crid_pod_start_phase_duration_seconds Time spent in each phase of starting pods and containers.\n# TYPE crid_pod_start_phase_duration_seconds histogram\n");
        for (phase, h) in &m.phases {
            let labels = format!("phase=\"{phase}\"");
            h.render(&mut out, "crid_pod_start_phase_duration_seconds", &labels);
        }
        out.push_str("# HELP crid_image_pulls_total Image pulls, by result.\n# TYPE crid_image_pulls_total counter\n");
        for (result, h) in &m.pulls {
            let _ = writeln!(
                out,
                "crid_image_pulls_total{{result=\"{result}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP crid_image_pull_duration_seconds Image pull latency, by result.\n# TYPE crid_image_pull_duration_seconds histogram\n");
        for (result, h) in &m.pulls {
            let labels = format!("result=\"{result}\"");
            h.render(&mut out, "crid_image_pull_duration_seconds", &labels);
        }
        out.push_str("# HELP crid_image_pull_bytes_total Size of the images pulled successfully.\n# TYPE crid_image_pull_bytes_total counter\n");
        let _ = writeln!(out, "crid_image_pull_bytes_total {}", m.pull_bytes);
        out.push_str("# HELP crid_image_layers_stored_total Layers downloaded into containerd's content store, by how they got there: written by crid (direct) or streamed over Content.Write.\n# TYPE crid_image_layers_stored_total counter\n");
        for (path, n) in &m.layers {
            let _ = writeln!(out, "crid_image_layers_stored_total{{path=\"{path}\"}} {n}");
        }
        out.push_str("# HELP crid_pods Pod sandboxes, by state.\n# TYPE crid_pods gauge\n");
        for (state, n) in &gauges.pods {
            let _ = writeln!(out, "crid_pods{{state=\"{state}\"}} {n}");
        }
        out.push_str(
            "# HELP crid_containers Containers, by state.\n# TYPE crid_containers gauge\n",
        );
        for (state, n) in &gauges.containers {
            let _ = writeln!(out, "crid_containers{{state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP crid_container_event_subscribers Open GetContainerEvents streams.\n# TYPE crid_container_event_subscribers gauge\n");
        let _ = writeln!(
            out,
            "crid_container_event_subscribers {}",
            gauges.event_subscribers
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_like_grpc() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let m = Metrics::default();
        m.observe_rpc("Version", tonic::Code::Ok, Duration::from_millis(3));
        m.observe_rpc("Version", tonic::Code::Ok, Duration::from_secs(2));
        m.observe_layer_stored("direct");
        m.observe_layer_stored("direct");
        let text = m.render(&Gauges::default());
        assert!(text.contains("crid_image_layers_stored_total{path=\"direct\"} 2\n"));
        assert!(text.contains("crid_grpc_requests_total{method=\"Version\",code=\"OK\"} 2\n"));
        assert!(text.contains(
            "crid_grpc_request_duration_seconds_bucket{method=\"Version\",code=\"OK\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "crid_grpc_request_duration_seconds_bucket{method=\"Version\",code=\"OK\",le=\"+Inf\"} 2\n"
        ));
    }
}
