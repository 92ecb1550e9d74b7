//! crid's own Prometheus metrics: RPC counts and latencies per method and
//! code, pod start latency by phase, image pulls, pod and container gauges.
//! One process-wide registry (`global()`) of `prometheus-client` metrics,
//! recorded into from the gRPC edge and a few domain points and rendered in
//! the Prometheus text format (0.0.4); `http` serves it on
//! `metrics_address`. Knows nothing of containerd or CRI.

pub mod http;
pub mod phases;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The `Content-Type` of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

fn latencies<L: Clone + std::hash::Hash + Eq>() -> Latencies<L> {
    Family::new_with_constructor(latency_histogram)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PullLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabels {
    path: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// The metrics recorded as things happen; the registry holds clones of the
/// same handles (they share their values) in the order they are exposed.
pub struct Metrics {
    registry: Registry,
    rpcs: Family<RpcLabels, Counter>,
    rpc_latency: Latencies<RpcLabels>,
    phases: Latencies<PhaseLabels>,
    pulls: Family<PullLabels, Counter>,
    pull_latency: Latencies<PullLabels>,
    pull_bytes: Counter,
    layers: Family<LayerLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            rpcs: Family::default(),
            rpc_latency: latencies(),
            phases: latencies(),
            pulls: Family::default(),
            pull_latency: latencies(),
            pull_bytes: Counter::default(),
            layers: Family::default(),
        };
        let mut registry = Registry::default();
        // Help texts without their final period: the registry adds it.
        registry.register(
            "crid_grpc_requests",
            "CRI RPCs handled, by method and gRPC code",
            m.rpcs.clone(),
        );
        registry.register(
            "crid_grpc_request_duration_seconds",
            "CRI RPC latency, by method and gRPC code",
            m.rpc_latency.clone(),
        );
        registry.register(
            "crid_pod_start_phase_duration_seconds",
            "Time spent in each phase of starting pods and containers",
            m.phases.clone(),
        );
        registry.register(
            "crid_image_pulls",
            "Image pulls, by result",
            m.pulls.clone(),
        );
        registry.register(
            "crid_image_pull_duration_seconds",
            "Image pull latency, by result",
            m.pull_latency.clone(),
        );
        registry.register(
            "crid_image_pull_bytes",
            "Size of the images pulled successfully",
            m.pull_bytes.clone(),
        );
        registry.register(
            "crid_image_layers_stored",
            "Layers downloaded into containerd's content store, by how they got there: written by crid (direct) or streamed over Content.Write",
            m.layers.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// Current object counts, gathered by the caller at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// (state, count)
    pub pods: Vec<(String, u64)>,
    pub containers: Vec<(String, u64)>,
    pub event_subscribers: u64,
}

impl Gauges {
    /// A registry of this scrape's gauges, exposed after the global one.
    fn registry(&self) -> Registry {
        let by_state = |counts: &[(String, u64)]| {
            let family = Family::<StateLabels, Gauge<u64, AtomicU64>>::default();
            for (state, n) in counts {
                let labels = StateLabels {
                    state: state.clone(),
                };
                family.get_or_create(&labels).set(*n);
            }
            family
        };
        let mut registry = Registry::default();
        registry.register("crid_pods", "Pod sandboxes, by state", by_state(&self.pods));
        registry.register(
            "crid_containers",
            "Containers, by state",
            by_state(&self.containers),
        );
        let subscribers = Gauge::<u64, AtomicU64>::default();
        subscribers.set(self.event_subscribers);
        registry.register(
            "crid_container_event_subscribers",
            "Open GetContainerEvents streams",
            subscribers,
        );
        registry
    }
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
    pub fn observe_rpc(&self, method: &str, code: tonic::Code, d: Duration) {
        let labels = RpcLabels {
            method: method.to_string(),
            code: code_name(code),
        };
        self.rpcs.get_or_create(&labels).inc();
        self.rpc_latency
            .get_or_create(&labels)
            .observe(d.as_secs_f64());
    }

    pub fn observe_phase(&self, phase: &'static str, d: Duration) {
        self.phases
            .get_or_create(&PhaseLabels { phase })
            .observe(d.as_secs_f64());
    }

    pub fn observe_pull(&self, ok: bool, d: Duration, bytes: u64) {
        let labels = PullLabels {
            result: if ok { "success" } else { "failure" },
        };
        self.pulls.get_or_create(&labels).inc();
        self.pull_latency
            .get_or_create(&labels)
            .observe(d.as_secs_f64());
        self.pull_bytes.inc_by(bytes);
    }

    /// A downloaded layer is in containerd's store: written there by crid
    /// (`direct`) or streamed over `Content.Write` (`streamed`).
    pub fn observe_layer_stored(&self, path: &'static str) {
        self.layers.get_or_create(&LayerLabels { path }).inc();
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_text::encode(&mut out, &gauges.registry());
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

    /// The whole exposition for a known state, byte for byte: the text the
    /// hand-written renderer produced before prometheus-client (same names,
    /// labels, types, help, bucket bounds and order). One difference: a
    /// family with no samples yet is left out, HELP and TYPE included.
    #[test]
    fn exposition_is_unchanged() {
        let m = Metrics::default();
        m.observe_rpc("Version", tonic::Code::Ok, Duration::from_millis(3));
        m.observe_rpc("Version", tonic::Code::Ok, Duration::from_secs(2));
        m.observe_phase("cni", Duration::from_millis(20));
        m.observe_pull(true, Duration::from_millis(700), 1234);
        m.observe_layer_stored("direct");
        let gauges = Gauges {
            pods: vec![("ready".into(), 2)],
            containers: vec![("running".into(), 1)],
            event_subscribers: 3,
        };
        assert_eq!(m.render(&gauges), include_str!("exposition.golden"));
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
