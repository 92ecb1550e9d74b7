//! The workloads, run interleaved: every round visits every system (in a
//! rotating order) so they share the machine's noise. The numbers in the
//! comments are issue #9's workload numbers; the pull workload is in `pull`.

use super::backend::{Backend, PodRef};
use super::procstat;
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// One workload of the benchmark, as `--workloads` / `BENCH_WORKLOADS` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// Sequential pod starts up to N pods per system.
    Start,
    /// Concurrent pod starts (and their concurrent teardown).
    Conc,
    /// Sequential stop + remove of the N pods.
    Stop,
    /// kubelet's relist at N pods.
    Relist,
    /// ExecSync `true` at N pods.
    Exec,
    /// Cold pulls of a large image.
    Pull,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::Start,
        Workload::Conc,
        Workload::Stop,
        Workload::Relist,
        Workload::Exec,
        Workload::Pull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Start => "start",
            Workload::Conc => "conc",
            Workload::Stop => "stop",
            Workload::Relist => "relist",
            Workload::Exec => "exec",
            Workload::Pull => "pull",
        }
    }
}

/// The selected workloads; they always run in the same order (start, relist,
/// exec, stop, concurrent, pull) whatever order they were named in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workloads(BTreeSet<Workload>);

impl Default for Workloads {
    fn default() -> Self {
        Workloads(Workload::ALL.into_iter().collect())
    }
}

impl Workloads {
    /// `start,conc,stop,relist,exec,pull` (any subset, any order; `all`).
    pub fn parse(list: &str) -> Result<Self> {
        let mut set = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                set.extend(Workload::ALL);
                continue;
            }
            match Workload::ALL.into_iter().find(|w| w.name() == name) {
                Some(w) => {
                    set.insert(w);
                }
                None => bail!(
                    "unknown workload {name:?} (known: {})",
                    Workload::ALL.map(Workload::name).join(",")
                ),
            }
        }
        if set.is_empty() {
            bail!("no workload selected");
        }
        Ok(Workloads(set))
    }

    pub fn has(&self, w: Workload) -> bool {
        self.0.contains(&w)
    }

    /// Whether the N sequential pods are needed (started, then torn down).
    pub fn needs_pods(&self) -> bool {
        [
            Workload::Start,
            Workload::Relist,
            Workload::Exec,
            Workload::Stop,
        ]
        .iter()
        .any(|w| self.has(*w))
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|w| w.name()).collect()
    }
}

pub struct System {
    /// "crid", "containerd-cri", "docker".
    pub name: String,
    pub backend: Backend,
    /// Runtime processes charged to this system: (label, pid).
    pub pids: Vec<(String, u32)>,
    /// containerd namespace its shims carry (for shim RSS), if any.
    pub shim_namespace: Option<String>,
    /// Takes part in the pull workload.
    pub pulls: bool,
    pub pods: Vec<PodRef>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub workloads: Workloads,
    pub pods: usize,
    pub batch: usize,
    pub concurrency: Vec<usize>,
    pub concurrency_rounds: usize,
    pub relist_iterations: usize,
    pub exec_iterations: usize,
    pub pull_image: Option<String>,
    pub pull_rounds: usize,
    /// What makes a pull cold (the image's layers, containerd to collect in).
    pub pull_cold: std::sync::Arc<super::pull::ColdCheck>,
    pub containerd_address: String,
}

/// Everything measured: per system, per metric, samples in ms (or units the
/// metric name says).
#[derive(Debug, Default)]
pub struct Results {
    pub samples: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// (system, workload, process label) → CPU seconds.
    pub cpu: BTreeMap<(String, String, String), f64>,
    /// (system, moment, process label) → KiB.
    pub memory: BTreeMap<(String, String, String), u64>,
    /// Sandbox/container ids of crid's sequential starts: (sandbox, container, client ms).
    pub crid_pods: Vec<(String, String, f64)>,
    /// Container ids of each system's sequential starts.
    pub sequential_containers: BTreeMap<String, Vec<String>>,
    /// (system, pods running) → runtime memory of those pods.
    pub pod_memory: BTreeMap<(String, usize), PodMemory>,
    /// Whether each timed pull was cold.
    pub pulls: Vec<super::pull::PullState>,
    pub notes: Vec<String>,
}

/// The runtime's memory for a system's pods at one moment: per process
/// kind (`procstat::RUNTIME_KINDS`), the process count and the summed PSS
/// and anonymous PSS in KiB. The workloads (`sleep`) are not counted.
#[derive(Debug, Default, Clone)]
pub struct PodMemory {
    pub kinds: BTreeMap<&'static str, (usize, u64, u64)>,
}

impl PodMemory {
    pub fn measure(namespace: &str, containerd_address: &str) -> PodMemory {
        let mut m = PodMemory::default();
        for (kind, pid) in procstat::runtime_processes(namespace, containerd_address) {
            let (pss, anon) = procstat::pss_kib(pid).unwrap_or((0, 0));
            let e = m.kinds.entry(kind).or_default();
            *e = (e.0 + 1, e.1 + pss, e.2 + anon);
        }
        m
    }
    /// (PSS, anonymous PSS) in KiB over every kind.
    pub fn total_kib(&self) -> (u64, u64) {
        self.kinds
            .values()
            .fold((0, 0), |(p, a), (_, pss, anon)| (p + pss, a + anon))
    }
}

impl Results {
    pub fn add(&mut self, system: &str, metric: &str, v: f64) {
        self.samples
            .entry(system.to_string())
            .or_default()
            .entry(metric.to_string())
            .or_default()
            .push(v);
    }
    pub fn get(&self, system: &str, metric: &str) -> &[f64] {
        self.samples
            .get(system)
            .and_then(|m| m.get(metric))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The container of the system's pods that iteration `it` measures (round robin).
fn round_robin_container(s: &System, it: usize) -> Option<String> {
    s.pods
        .get(it % s.pods.len().max(1))
        .map(|p| p.container.clone())
}

pub(super) fn cpu_of(s: &System) -> Vec<f64> {
    s.pids
        .iter()
        .map(|(_, p)| procstat::cpu_seconds(*p).unwrap_or(0.0))
        .collect()
}

pub(super) fn charge(r: &mut Results, s: &System, workload: &str, before: &[f64]) {
    for ((label, pid), b) in s.pids.iter().zip(before) {
        let after = procstat::cpu_seconds(*pid).unwrap_or(*b);
        *r.cpu
            .entry((s.name.clone(), workload.to_string(), label.clone()))
            .or_default() += after - b;
    }
}

fn snapshot_memory(r: &mut Results, s: &System, moment: &str, containerd_address: &str) {
    for (label, pid) in &s.pids {
        if let Some((rss, hwm)) = procstat::memory_kib(*pid) {
            r.memory
                .insert((s.name.clone(), moment.into(), label.clone()), rss);
            r.memory.insert(
                (s.name.clone(), format!("{moment} (VmHWM)"), label.clone()),
                hwm,
            );
        }
    }
    if let Some(ns) = &s.shim_namespace {
        let (n, rss) = procstat::shims(ns, containerd_address);
        r.memory
            .insert((s.name.clone(), moment.into(), format!("{n} shims")), rss);
    }
}

pub(super) fn order(n: usize, round: usize) -> Vec<usize> {
    (0..n).map(|i| (i + round) % n).collect()
}

pub async fn run(systems: &mut [System], o: &Options) -> Result<Results> {
    let mut r = Results::default();
    let w = &o.workloads;
    for s in systems.iter() {
        snapshot_memory(&mut r, s, "idle", &o.containerd_address);
    }
    if w.needs_pods() {
        // Pods for relist/exec/stop are started (and torn down) even when
        // start (stop) itself is not selected; then nothing of it is recorded.
        let mut unrecorded = Results::default();
        let rec = if w.has(Workload::Start) {
            &mut r
        } else {
            &mut unrecorded
        };
        start_sequential(systems, o, rec).await?;
        for s in systems.iter() {
            snapshot_memory(
                &mut r,
                s,
                &format!("{} pods", s.pods.len()),
                &o.containerd_address,
            );
        }
        if w.has(Workload::Relist) {
            relist(systems, o, &mut r).await?;
        }
        if w.has(Workload::Exec) {
            exec(systems, o, &mut r).await?;
        }
        let rec = if w.has(Workload::Stop) {
            &mut r
        } else {
            &mut unrecorded
        };
        stop_all(systems, o, rec).await?;
    }
    if w.has(Workload::Conc) {
        concurrent(systems, o, &mut r).await?;
    }
    if w.has(Workload::Pull) {
        if let Some(image) = &o.pull_image {
            super::pull::run(systems, o, image, &mut r).await?;
        }
    }
    for s in systems.iter() {
        snapshot_memory(&mut r, s, "end", &o.containerd_address);
    }
    Ok(r)
}

/// (1) sequential pod starts, in batches, interleaved.
async fn start_sequential(systems: &mut [System], o: &Options, r: &mut Results) -> Result<()> {
    let n = systems.len();
    let rounds = o.pods.div_ceil(o.batch.max(1));
    let mut seq = 0usize;
    for round in 0..rounds {
        for i in order(n, round) {
            let s = &mut systems[i];
            let before = cpu_of(s);
            for _ in 0..o.batch.min(o.pods - s.pods.len()) {
                seq += 1;
                let name = format!("{}-s{seq}", short(&s.name));
                let t = Instant::now();
                let (pod, phases) = s
                    .backend
                    .start_pod(&name)
                    .await
                    .map_err(|e| anyhow!("{}: start {name}: {e:#}", s.name))?;
                let total = t.elapsed().as_secs_f64() * 1000.0;
                for (p, v) in &phases {
                    r.add(&s.name, &format!("start/{p}"), *v);
                }
                r.add(&s.name, "start/pod", total);
                if s.name == "crid" {
                    r.crid_pods
                        .push((pod.sandbox.clone(), pod.container.clone(), total));
                }
                r.sequential_containers
                    .entry(s.name.clone())
                    .or_default()
                    .push(pod.container.clone());
                s.pods.push(pod);
            }
            charge(r, s, "start", &before);
            // Runtime memory per pod at 10 pods and at the full count.
            let at = s.pods.len();
            if at == o.pods.min(10) || at == o.pods {
                if let Some(ns) = &s.shim_namespace {
                    let m = PodMemory::measure(ns, &o.containerd_address);
                    r.pod_memory.insert((s.name.clone(), at), m);
                }
            }
        }
        eprintln!("crid-bench: sequential start round {}/{rounds}", round + 1);
    }
    Ok(())
}

/// Three `Version` calls in a row after each relist: its round trips alone.
pub const RELIST_FLOOR: &str = "relist/3 × Version (no work)";

/// (4) relist at N pods.
async fn relist(systems: &[System], o: &Options, r: &mut Results) -> Result<()> {
    for it in 0..o.relist_iterations {
        for i in order(systems.len(), it) {
            let s = &systems[i];
            let Some(c) = round_robin_container(s, it) else {
                continue;
            };
            let before = cpu_of(s);
            let phases = s
                .backend
                .relist(&c)
                .await
                .map_err(|e| anyhow!("{}: relist: {e:#}", s.name))?;
            charge(r, s, "relist", &before);
            let mut total = 0.0;
            for (p, v) in phases {
                r.add(&s.name, &format!("relist/{p}"), v);
                total += v;
            }
            r.add(&s.name, "relist/total", total);
            if let Some(v) = s.backend.three_empty_calls().await? {
                r.add(&s.name, RELIST_FLOOR, v);
            }
        }
    }
    eprintln!("crid-bench: relist done");
    Ok(())
}

/// (6) exec latency.
async fn exec(systems: &[System], o: &Options, r: &mut Results) -> Result<()> {
    for it in 0..o.exec_iterations {
        for i in order(systems.len(), it) {
            let s = &systems[i];
            let Some(c) = round_robin_container(s, it) else {
                continue;
            };
            let before = cpu_of(s);
            let v = s
                .backend
                .exec_true(&c)
                .await
                .map_err(|e| anyhow!("{}: exec: {e:#}", s.name))?;
            charge(r, s, "exec", &before);
            r.add(&s.name, "exec/ExecSync", v);
        }
    }
    eprintln!("crid-bench: exec done");
    Ok(())
}

/// (3) stop + remove every pod, interleaved batches.
async fn stop_all(systems: &mut [System], o: &Options, r: &mut Results) -> Result<()> {
    let n = systems.len();
    let mut round = 0;
    while systems.iter().any(|s| !s.pods.is_empty()) {
        for i in order(n, round) {
            let s = &mut systems[i];
            let before = cpu_of(s);
            for _ in 0..o.batch.min(s.pods.len()) {
                let pod = s.pods.pop().expect("non-empty");
                let t = Instant::now();
                let phases = s
                    .backend
                    .stop_pod(&pod)
                    .await
                    .map_err(|e| anyhow!("{}: stop {}: {e:#}", s.name, pod.name))?;
                let total = t.elapsed().as_secs_f64() * 1000.0;
                for (p, v) in phases {
                    r.add(&s.name, &format!("stop/{p}"), v);
                }
                r.add(&s.name, "stop/pod", total);
            }
            charge(r, s, "stop", &before);
        }
        round += 1;
    }
    eprintln!("crid-bench: stop/remove done");
    Ok(())
}

/// (2) concurrent starts: wall time of c pods started at once, then torn
/// down at once.
async fn concurrent(systems: &mut [System], o: &Options, r: &mut Results) -> Result<()> {
    let n = systems.len();
    for &c in &o.concurrency {
        for round in 0..o.concurrency_rounds {
            for i in order(n, round) {
                let s = &mut systems[i];
                let before = cpu_of(s);
                let t = Instant::now();
                let futs = (0..c).map(|k| {
                    let name = format!("{}-c{c}-{round}-{k}", short(&s.name));
                    let b = &s.backend;
                    async move {
                        let t = Instant::now();
                        let res = b.start_pod(&name).await;
                        (res, t.elapsed().as_secs_f64() * 1000.0)
                    }
                });
                let results = futures::future::join_all(futs).await;
                let wall = t.elapsed().as_secs_f64() * 1000.0;
                charge(r, s, &format!("concurrent {c}"), &before);
                let mut failed = None;
                for (res, v) in results {
                    match res {
                        Ok((pod, _)) => {
                            r.add(&s.name, &format!("conc{c}/pod"), v);
                            s.pods.push(pod);
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                r.add(&s.name, &format!("conc{c}/wall"), wall);
                let t = Instant::now();
                let pods = std::mem::take(&mut s.pods);
                let b = &s.backend;
                let stops = futures::future::join_all(pods.iter().map(|p| b.stop_pod(p))).await;
                r.add(
                    &s.name,
                    &format!("conc{c}/stop wall"),
                    t.elapsed().as_secs_f64() * 1000.0,
                );
                if let Some(e) = failed {
                    return Err(anyhow!("{}: concurrent {c}: {e:#}", s.name));
                }
                if let Some(Err(e)) = stops.into_iter().find(|x| x.is_err()) {
                    return Err(anyhow!("{}: concurrent stop: {e:#}", s.name));
                }
            }
        }
        eprintln!("crid-bench: concurrency {c} done");
    }
    Ok(())
}

fn short(name: &str) -> &str {
    match name {
        "containerd-cri" => "ctrd",
        "docker" => "dkr",
        other => other,
    }
}

/// crid's `crid::phases` debug events: (rpc, id) → (containerd µs, cni µs,
/// total µs of the operation inside crid).
pub fn parse_phase_log(text: &str) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let mut out = BTreeMap::new();
    let text = strip_ansi(text);
    for line in text.lines().filter(|l| l.contains("crid::phases")) {
        let mut rpc = None;
        let mut id = None;
        let mut ctrd = 0;
        let mut cni = 0;
        let mut total = 0;
        for (k, v) in fields(line) {
            match k {
                "rpc" => rpc = Some(v.to_string()),
                "id" => id = Some(v.to_string()),
                "containerd_us" => ctrd = v.parse().unwrap_or(0),
                "cni_us" => cni = v.parse().unwrap_or(0),
                "total_us" => total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        if let (Some(rpc), Some(id)) = (rpc, id) {
            out.insert((rpc, id), (ctrd, cni, total));
        }
    }
    out
}

/// (id, ms) of step `step` in crid's `crid::phases` events of `rpc`, in
/// log order (the event's `steps` field lists `name=µs`).
pub fn parse_step_log(text: &str, rpc: &str, step: &str) -> Vec<(String, f64)> {
    let text = strip_ansi(text);
    text.lines()
        .filter(|l| l.contains("crid::phases"))
        .filter(|l| fields(l).any(|(k, v)| k == "rpc" && v == rpc))
        .filter_map(|l| {
            let id = fields(l).find(|(k, _)| *k == "id")?.1.to_string();
            // `steps=first=µs second=µs ...`: the first step shares a token.
            let us = l
                .split_whitespace()
                .map(|t| t.strip_prefix("steps=").unwrap_or(t))
                .find_map(|t| t.strip_prefix(step)?.strip_prefix('='))?;
            Some((id, us.parse::<f64>().ok()? / 1000.0))
        })
        .collect()
}

/// crid's `rpc ok` debug events (target `crid::server`), in log order:
/// (method, µs spent in crid's handler, from request decoded to response
/// built).
pub fn parse_rpc_log(text: &str) -> Vec<(String, u64)> {
    let text = strip_ansi(text);
    let mut out = vec![];
    for line in text.lines().filter(|l| l.contains("rpc ok")) {
        let mut method = None;
        let mut us = None;
        for (k, v) in fields(line) {
            match k {
                "method" => method = Some(v.to_string()),
                "elapsed_us" => us = v.parse().ok(),
                _ => {}
            }
        }
        if let (Some(m), Some(us)) = (method, us) {
            out.push((m, us));
        }
    }
    out
}

/// Relist rounds as crid's handlers saw them: the handler times (µs) of each
/// ListPodSandbox, ListContainers, ContainerStatus run in a row, in that order.
pub fn relist_rounds_in_crid(rpcs: &[(String, u64)]) -> Vec<[u64; 3]> {
    const ROUND: [&str; 3] = ["ListPodSandbox", "ListContainers", "ContainerStatus"];
    rpcs.windows(3)
        .filter(|w| w.iter().zip(ROUND).all(|((m, _), r)| m == r))
        .map(|w| [w[0].1, w[1].1, w[2].1])
        .collect()
}

/// `key=value` tokens of a log line, quotes trimmed.
fn fields(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split_whitespace()
        .filter_map(|tok| tok.split_once('='))
        .map(|(k, v)| (k, v.trim_matches('"')))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn phase_lines() {
        let log = "2025-01-01T00:00:00Z DEBUG crid::phases: phases rpc=\"RunPodSandbox\" id=abc total_us=900 containerd_us=500 cni_us=300\nother line\n\x1b[2m\x1b[0m\n\x1b[2mcrid::phases\x1b[0m: \x1b[3mrpc\x1b[0m\x1b[2m=\x1b[0m\"StartContainer\" \x1b[3mid\x1b[0m\x1b[2m=\x1b[0mc1 \x1b[3mcontainerd_us\x1b[0m\x1b[2m=\x1b[0m77";
        let m = super::parse_phase_log(log);
        assert_eq!(
            super::parse_step_log(
                "x crid::phases: phases rpc=\"StartContainer\" id=c total_us=9 steps=prepare=10 task_create=2500 task_start=40\nx crid::phases: phases rpc=\"StartContainer\" id=d steps=task_create=1500\nx crid::phases: phases rpc=\"CreateContainer\" id=c steps=task_create=7",
                "StartContainer",
                "task_create"
            ),
            vec![("c".to_string(), 2.5), ("d".to_string(), 1.5)]
        );
        assert_eq!(
            m.get(&("RunPodSandbox".into(), "abc".into())),
            Some(&(500, 300, 900))
        );
        assert_eq!(
            m.get(&("StartContainer".into(), "c1".into())),
            Some(&(77, 0, 0))
        );
        assert_eq!(m.len(), 2);
        assert_eq!(super::order(3, 1), vec![1, 2, 0]);
    }

    #[test]
    fn rpc_lines_and_relist_rounds() {
        let line = |m: &str, us: u64| {
            format!("2025-01-01T00:00:00Z DEBUG rpc{{method=/runtime.v1.RuntimeService/{m}}}: crid::server: rpc ok method=\"{m}\" elapsed_us={us}\n")
        };
        let mut log = String::new();
        for (m, us) in [
            ("Version", 5),
            ("ListPodSandbox", 70),
            ("ListContainers", 40),
            ("ContainerStatus", 8),
            ("ListContainers", 1000),
            ("ListPodSandbox", 80),
            ("ListContainers", 50),
            ("ContainerStatus", 10),
        ] {
            log.push_str(&line(m, us));
        }
        log.push_str("other line\n");
        let rpcs = super::parse_rpc_log(&log);
        assert_eq!(rpcs.len(), 8);
        assert_eq!(rpcs[0], ("Version".to_string(), 5));
        assert_eq!(
            super::relist_rounds_in_crid(&rpcs),
            vec![[70, 40, 8], [80, 50, 10]]
        );
    }

    #[test]
    fn workload_lists() {
        use super::{Workload, Workloads};
        let w = Workloads::parse("pull, start").unwrap();
        assert!(w.has(Workload::Pull) && w.has(Workload::Start));
        assert!(!w.has(Workload::Conc));
        assert!(w.needs_pods());
        assert_eq!(w.names(), vec!["start", "pull"]);
        assert!(!Workloads::parse("conc,pull").unwrap().needs_pods());
        assert!(Workloads::parse("exec").unwrap().needs_pods());
        assert_eq!(Workloads::parse("all").unwrap(), Workloads::default());
        assert!(Workloads::parse("start,bogus").is_err());
        assert!(Workloads::parse("").is_err());
    }
}
