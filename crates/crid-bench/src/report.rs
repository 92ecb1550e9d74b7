//! BENCHMARKS.md and the SVG plots from the measured `Results`.

use super::stats::{fmt, ratio, summarize};
use super::svg;
use super::workload::Results;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

pub struct ReportInput<'a> {
    pub results: &'a Results,
    pub systems: Vec<String>,
    /// Markdown describing the machine, versions and command (from the script).
    pub preamble: String,
    /// (rpc, id) → (containerd µs, cni µs, total µs) from crid's log.
    pub crid_phases: BTreeMap<(String, String), (u64, u64, u64)>,
    /// (method, handler µs) of every RPC crid logged, in order.
    pub crid_rpcs: Vec<(String, u64)>,
    /// (system, ms of each StartContainer's task create): containerd's
    /// Tasks.Create, where a pod without a pause container starts its shim.
    pub shim_starts: Vec<(String, Vec<f64>)>,
    /// Unix socket round trips between two threads (µs): back to back, and
    /// with 10 ms idle between them.
    pub round_trip_floor_us: (Vec<f64>, Vec<f64>),
    pub pods: usize,
    /// Directory the plots go to, and its name relative to BENCHMARKS.md.
    pub plot_dir: &'a Path,
    pub plot_link: String,
    /// Hand-written analysis appended at the end (may be empty).
    pub epilogue: String,
}

const CRID: &str = "crid";
const CRI: &str = "containerd-cri";
const DOCKER: &str = "docker";
/// crid with `drop_pause_container = false`: a pause container per pod.
const CRID_PAUSE: &str = "crid-pause";
/// crid on containerd's runc shim, a crid-logger per container.
const CRID_RUNC: &str = "crid-runc";
/// Runtime memory per pod that crid's own shim aims at (issue #25).
const POD_MEMORY_LIMIT_MIB: f64 = 0.5;

fn p50(r: &Results, s: &str, m: &str) -> f64 {
    summarize(r.get(s, m)).p50
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// crid's own time per pod: client-side pod start minus the time crid spent
/// waiting on containerd (+ shim) and CNI plugins in its three RPCs.
/// Returns (overhead ms, containerd ms, cni ms) per pod.
pub fn crid_overhead(input: &ReportInput) -> Vec<(f64, f64, f64)> {
    let mut out = vec![];
    for (sandbox, container, total) in &input.results.crid_pods {
        let get = |rpc: &str, id: &str| {
            input
                .crid_phases
                .get(&(rpc.to_string(), id.to_string()))
                .copied()
        };
        let (Some(a), Some(b), Some(c)) = (
            get("RunPodSandbox", sandbox),
            get("CreateContainer", container),
            get("StartContainer", container),
        ) else {
            continue;
        };
        let ctrd = (a.0 + b.0 + c.0) as f64 / 1000.0;
        let cni = (a.1 + b.1 + c.1) as f64 / 1000.0;
        out.push((total - ctrd - cni, ctrd, cni));
    }
    out
}

/// issue #9 states crid's RSS target at this many pods.
const RSS_TARGET_PODS: usize = 100;
const RSS_LIMIT_MIB: f64 = 40.0;

/// `**met**`, `**missed**` or `not measured` (NaN).
fn verdict(measured: f64, limit: f64) -> &'static str {
    if measured.is_nan() {
        "not measured"
    } else if measured <= limit {
        "**met**"
    } else {
        "**missed**"
    }
}

fn measured_text(measured: f64, unit: &str) -> String {
    if measured.is_nan() {
        "–".into()
    } else {
        format!("{}{unit}", fmt(measured))
    }
}

fn target_row(name: &str, measured: &str, result: &str, limit: f64, unit: &str) -> String {
    format!(
        "| {name} ≤ {}{unit} | {measured} | {result} |\n",
        fmt(limit)
    )
}

/// The RSS target is stated at `RSS_TARGET_PODS`; a run with another pod
/// count says so. A peak within the limit at more pods also holds at fewer
/// (VmHWM only grows); any other count leaves the target unmeasured.
fn rss_at_target_pods(pods: usize, peak_mib: f64, limit: f64) -> (String, &'static str) {
    if peak_mib.is_nan() {
        return ("–".into(), "not measured");
    }
    let measured = if pods == RSS_TARGET_PODS {
        measured_text(peak_mib, " MiB")
    } else {
        format!("{} at {pods} pods", measured_text(peak_mib, " MiB"))
    };
    let result = if pods == RSS_TARGET_PODS || (pods > RSS_TARGET_PODS && peak_mib <= limit) {
        verdict(peak_mib, limit)
    } else {
        "not measured at 100 pods"
    };
    (measured, result)
}

/// Cold/warm state of the pulls of `systems`, for labels.
fn pull_summary(r: &Results, systems: &[&str]) -> String {
    let states: Vec<_> = r
        .pulls
        .iter()
        .filter(|p| systems.contains(&p.system.as_str()))
        .cloned()
        .collect();
    super::pull::summary(&states)
}

pub fn write(input: &ReportInput, md_path: &Path) -> anyhow::Result<()> {
    let r = input.results;
    std::fs::create_dir_all(input.plot_dir)?;
    let has = |s: &str| input.systems.iter().any(|x| x == s);
    let systems: Vec<&str> = input.systems.iter().map(String::as_str).collect();
    let mut md = String::new();
    let _ = writeln!(md, "# crid benchmarks\n");
    md.push_str(&input.preamble);
    md.push('\n');

    let overhead = crid_overhead(input);
    let ov: Vec<f64> = overhead.iter().map(|o| o.0).collect();
    let ov_ctrd: Vec<f64> = overhead.iter().map(|o| o.1).collect();
    let ov_cni: Vec<f64> = overhead.iter().map(|o| o.2).collect();
    let mem = |s: &str, moment: &str, label: &str| {
        r.memory
            .get(&(s.to_string(), moment.to_string(), label.to_string()))
            .copied()
    };
    let at_n = format!("{} pods", input.pods);

    // Targets.
    let _ = writeln!(md, "## Targets (issue #9)\n");
    let _ = writeln!(md, "| target | measured | result |\n|---|---|---|");
    let target = |md: &mut String, name: &str, measured: f64, limit: f64, unit: &str| {
        md.push_str(&target_row(
            name,
            &measured_text(measured, unit),
            verdict(measured, limit),
            limit,
            unit,
        ));
    };
    // Pod-start targets for crid, and for crid with pause containers
    // where it ran.
    for (system, who) in [(CRID, "crid"), (CRID_PAUSE, "crid with pause containers")] {
        if !has(system) {
            continue;
        }
        for (other, limit, label) in [(CRI, 0.8, "containerd CRI"), (DOCKER, 0.5, "docker path")] {
            if has(other) {
                target(
                    &mut md,
                    &format!("pod start p50, {who} / {label}"),
                    ratio(p50(r, system, "start/pod"), p50(r, other, "start/pod")),
                    limit,
                    "×",
                );
            }
        }
        if has(CRI) {
            target(
                &mut md,
                &format!("50 concurrent pod starts wall, {who} / containerd CRI"),
                ratio(p50(r, system, "conc50/wall"), p50(r, CRI, "conc50/wall")),
                0.8,
                "×",
            );
        }
    }
    target(
        &mut md,
        "crid overhead per pod (p50)",
        summarize(&ov).p50,
        3.0,
        " ms",
    );
    target(
        &mut md,
        "crid idle RSS",
        mem(CRID, "idle", "crid").map(mib).unwrap_or(f64::NAN),
        15.0,
        " MiB",
    );
    let peak = mem(CRID, &format!("{at_n} (VmHWM)"), "crid")
        .map(mib)
        .unwrap_or(f64::NAN);
    let (measured, result) = rss_at_target_pods(input.pods, peak, RSS_LIMIT_MIB);
    md.push_str(&target_row(
        &format!("crid RSS at {RSS_TARGET_PODS} pods (peak VmHWM)"),
        &measured,
        result,
        RSS_LIMIT_MIB,
        " MiB",
    ));
    target(
        &mut md,
        &format!(
            "relist at {} pods p99 (ListPodSandbox+ListContainers+ContainerStatus)",
            input.pods
        ),
        summarize(r.get(CRID, "relist/total")).p99,
        1.0,
        " ms",
    );
    if has(CRI) {
        target(
            &mut md,
            &if r.pulls.is_empty() {
                "image pull p50, crid / containerd CRI".to_string()
            } else {
                format!(
                    "image pull p50 ({}), crid / containerd CRI",
                    pull_summary(r, &[CRID, CRI])
                )
            },
            ratio(
                p50(r, CRID, "pull/PullImage"),
                p50(r, CRI, "pull/PullImage"),
            ),
            1.0,
            "×",
        );
    }
    md.push('\n');
    shim_targets(&mut md, input, &target);
    let floor = |s: &str| summarize(r.get(s, super::workload::RELIST_FLOOR));
    if !r.get(CRID, super::workload::RELIST_FLOOR).is_empty() {
        let cri = if has(CRI) {
            format!(", {} ms against the CRI plugin", fmt(floor(CRI).p99))
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "The relist's three round trips alone, three `Version` calls in a row that no server does work for, took {} ms at p99 against crid{cri} (p50 {} ms): the floor under any relist of three RPCs on this machine.\n",
            fmt(floor(CRID).p99),
            fmt(floor(CRID).p50),
        );
    }

    // Latency tables.
    let mut metrics: Vec<String> = vec![];
    for s in &systems {
        if let Some(m) = r.samples.get(*s) {
            for k in m.keys() {
                if !metrics.contains(k) {
                    metrics.push(k.clone());
                }
            }
        }
    }
    // One group per concurrency level that ran (`conc<c>/...`), ascending.
    let mut levels: Vec<usize> = metrics
        .iter()
        .filter_map(|m| m.split('/').next()?.strip_prefix("conc")?.parse().ok())
        .collect();
    levels.sort_unstable();
    levels.dedup();
    let mut groups: Vec<(String, String)> = vec![(
        "start".into(),
        "Pod start, sequential (RunPodSandbox + CreateContainer + StartContainer; docker: dockershim's steps)".into(),
    )];
    for c in levels {
        groups.push((format!("conc{c}"), format!("{c} concurrent pod starts")));
    }
    for (prefix, title) in [
        ("stop", "Stop + remove, sequential"),
        ("relist", "Relist"),
        ("exec", "ExecSync `true`"),
    ] {
        groups.push((prefix.into(), title.into()));
    }
    groups.push((
        "pull".into(),
        format!(
            "Image pull (~100 MB, 6 layers, loopback registry; {})",
            pull_summary(r, &systems)
        ),
    ));
    let _ = writeln!(md, "## Latency (ms)\n");
    let _ = writeln!(
        md,
        "Ratios compare medians (p50) from the same, interleaved run.\n"
    );
    for (prefix, title) in groups {
        let ms: Vec<&String> = metrics
            .iter()
            .filter(|m| m.split('/').next() == Some(prefix.as_str()))
            .collect();
        if ms.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {title}\n");
        let _ = writeln!(md, "| step | system | n | p50 | p95 | p99 | max | p50 crid / this |\n|---|---|---:|---:|---:|---:|---:|---:|");
        for m in ms {
            for s in &systems {
                let v = r.get(s, m);
                if v.is_empty() {
                    continue;
                }
                let x = summarize(v);
                let rat = if *s == CRID {
                    String::new()
                } else {
                    format!("{}×", fmt(ratio(p50(r, CRID, m), x.p50)))
                };
                let _ = writeln!(
                    md,
                    "| {} | {s} | {} | {} | {} | {} | {} | {rat} |",
                    m.split_once('/').map(|x| x.1).unwrap_or(m),
                    x.n,
                    fmt(x.p50),
                    fmt(x.p95),
                    fmt(x.p99),
                    fmt(x.max)
                );
            }
        }
        md.push('\n');
    }

    // crid overhead (needs the sequential starts and crid's phase log).
    let so = summarize(&ov);
    let sc = summarize(&ov_ctrd);
    let sn = summarize(&ov_cni);
    if !overhead.is_empty() {
        let _ = writeln!(md, "## crid's own time per pod\n");
        let _ = writeln!(
            md,
            "Client-side pod start (3 RPCs) minus the time crid spent inside containerd calls (snapshot prepare, container create, task create/start incl. the runc shim) and CNI plugins, from crid's `crid::phases` debug events. What remains is crid plus the CRI gRPC round trips.\n"
        );
        let _ = writeln!(
            md,
            "| part | n | p50 | p95 | p99 |\n|---|---:|---:|---:|---:|"
        );
        for (name, x) in [
            ("crid + gRPC (overhead)", so),
            ("containerd + shim + runc", sc),
            ("CNI plugins", sn),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} |",
                x.n,
                fmt(x.p50),
                fmt(x.p95),
                fmt(x.p99)
            );
        }
        md.push('\n');
    }
    rpc_split(&mut md, input);

    // CPU.
    let _ = writeln!(
        md,
        "## CPU seconds of the runtime processes, per workload\n"
    );
    let _ = writeln!(md, "utime+stime deltas from /proc/<pid>/stat, charged to the system whose turn it was. The containerd daemon is shared; shims are not included.\n");
    let _ = writeln!(
        md,
        "| workload | system | process | CPU s |\n|---|---|---|---:|"
    );
    for ((s, w, label), v) in &r.cpu {
        let _ = writeln!(md, "| {w} | {s} | {label} | {:.2} |", v);
    }
    md.push('\n');

    // Memory.
    let _ = writeln!(md, "## Memory (MiB)\n");
    let _ = writeln!(
        md,
        "| system | moment | process | MiB |\n|---|---|---|---:|"
    );
    for ((s, moment, label), kib) in &r.memory {
        let _ = writeln!(md, "| {s} | {moment} | {label} | {:.1} |", mib(*kib));
    }
    md.push('\n');

    let memory_bars = pod_memory(&mut md, input);

    // Plots.
    let mut plots = vec![];
    let series = |metric: &str| -> Vec<(String, Vec<f64>)> {
        systems
            .iter()
            .filter(|s| !r.get(s, metric).is_empty())
            .map(|s| (s.to_string(), r.get(s, metric).to_vec()))
            .collect()
    };
    for (file, title, metric) in [
        (
            "pod-start-cdf.svg",
            "Pod start latency (sequential), CDF",
            "start/pod",
        ),
        (
            "conc50-pod-cdf.svg",
            "Per-pod latency, 50 concurrent starts, CDF",
            "conc50/pod",
        ),
        ("stop-cdf.svg", "Stop + remove latency, CDF", "stop/pod"),
        ("relist-cdf.svg", "Relist latency, CDF", "relist/total"),
        (
            "exec-cdf.svg",
            "ExecSync true latency, CDF",
            "exec/ExecSync",
        ),
    ] {
        let s = series(metric);
        if s.is_empty() {
            continue;
        }
        std::fs::write(
            input.plot_dir.join(file),
            svg::cdf(title, "milliseconds", &s),
        )?;
        plots.push((file, title));
    }
    // Phase breakdown bars (medians).
    let mut bars: Vec<(String, Vec<(String, f64)>)> = vec![];
    if !overhead.is_empty() {
        bars.push((
            "crid".into(),
            vec![
                ("containerd + shim".into(), sc.p50),
                ("CNI plugins".into(), sn.p50),
                ("crid + gRPC".into(), so.p50),
            ],
        ));
    }
    for s in &systems {
        let prefix = "start/";
        let mut segs = vec![];
        if let Some(m) = r.samples.get(*s) {
            // keep the order the steps happen in: by first appearance in the backend
            let order: &[&str] = if *s == DOCKER {
                &[
                    "create pause",
                    "start pause",
                    "inspect pause",
                    "CNI ADD",
                    "create app",
                    "start app",
                ]
            } else {
                &["RunPodSandbox", "CreateContainer", "StartContainer"]
            };
            for step in order {
                if let Some(v) = m.get(&format!("{prefix}{step}")) {
                    segs.push((step.to_string(), summarize(v).p50));
                }
            }
        }
        if !segs.is_empty() {
            bars.push((format!("{s} (RPCs)"), segs));
        }
    }
    if !bars.is_empty() {
        std::fs::write(
            input.plot_dir.join("pod-start-phases.svg"),
            svg::stacked_bars("Pod start, median per phase", "milliseconds", &bars),
        )?;
        plots.push(("pod-start-phases.svg", "Pod start, median per phase"));
    }
    if !memory_bars.is_empty() {
        let title = "Runtime memory per pod (PSS)";
        std::fs::write(
            input.plot_dir.join("pod-memory.svg"),
            svg::stacked_bars(title, "MiB per pod", &memory_bars),
        )?;
        plots.push(("pod-memory.svg", title));
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
    }
    for (file, title) in plots {
        let _ = writeln!(
            md,
            "- [{title}]({}/{file})\n\n  ![{title}]({}/{file})\n",
            input.plot_link, input.plot_link
        );
    }
    if !r.notes.is_empty() {
        let _ = writeln!(md, "## Notes from the run\n");
        for n in &r.notes {
            let _ = writeln!(md, "- {n}");
        }
        md.push('\n');
    }
    md.push_str(&input.epilogue);
    std::fs::write(md_path, md)?;
    Ok(())
}

/// The targets of crid's own shim (issue #25): crid's runtime memory per
/// pod at 10 pods and at the full count, and its pod start against crid on
/// containerd's runc shim.
fn shim_targets(
    md: &mut String,
    input: &ReportInput,
    target: &dyn Fn(&mut String, &str, f64, f64, &str),
) {
    let r = input.results;
    let has = |s: &str| input.systems.iter().any(|x| x == s);
    if !has(CRID) {
        return;
    }
    let _ = writeln!(md, "## Targets (issue #25, crid's own shim)\n");
    let _ = writeln!(md, "| target | measured | result |\n|---|---|---|");
    for ((system, pods), m) in &r.pod_memory {
        if system == CRID {
            target(
                md,
                &format!("runtime memory per pod (PSS) at {pods} pods, crid"),
                m.total_kib().0 as f64 / 1024.0 / (*pods).max(1) as f64,
                POD_MEMORY_LIMIT_MIB,
                " MiB",
            );
        }
    }
    if has(CRID_RUNC) {
        target(
            md,
            "pod start p50, crid / crid on containerd's runc shim",
            ratio(p50(r, CRID, "start/pod"), p50(r, CRID_RUNC, "start/pod")),
            1.0,
            "×",
        );
    }
    md.push('\n');
    if input.shim_starts.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "The shim's start on its own, in the sequential pod starts: StartContainer's \
         `task_create` step in crid's `crid::phases` events, i.e. containerd's Tasks.Create \
         for the pod's only container, \
         which runs the shim's `start`, waits for the new shim to serve and has it run \
         `runc create`. The runc work is the same on both shims.\n"
    );
    let _ = writeln!(
        md,
        "| system | shim | n | p50 | p95 | p99 |\n|---|---|---:|---:|---:|---:|"
    );
    for (system, ms) in &input.shim_starts {
        let shim = if system == CRID {
            "containerd-shim-crid-v1"
        } else {
            "containerd-shim-runc-v2"
        };
        let st = summarize(ms);
        let _ = writeln!(
            md,
            "| {system} | {shim} | {} | {} | {} | {} |",
            ms.len(),
            fmt(st.p50),
            fmt(st.p95),
            fmt(st.p99)
        );
    }
    md.push('\n');
}

/// The runtime memory per pod table; returns its bars for the plot.
fn pod_memory(md: &mut String, input: &ReportInput) -> Vec<(String, Vec<(String, f64)>)> {
    let r = input.results;
    let mut bars = vec![];
    if r.pod_memory.is_empty() {
        return bars;
    }
    let _ = writeln!(md, "## Runtime memory per pod (PSS)\n");
    let _ = writeln!(
        md,
        "What each system runs for its pods besides the workload: the shims and, below them, crid's \
         log processes (`crid-logger`, one per container on containerd's runc shim) and pause \
         containers. Each process's PSS (`/proc/<pid>/smaps_rollup`: its private pages plus its \
         share of every page it shares) is summed and divided by the pods running, during the \
         sequential start at {}. Code pages shared by the shims of one binary are divided \
         among them, so the figure falls as pods are added; the anonymous part is what each \
         pod really costs.\n",
        if input.pods > 10 {
            format!("10 pods and at {} pods", input.pods)
        } else {
            format!("{} pods", input.pods)
        }
    );
    let _ = writeln!(
        md,
        "| system | pods | processes | PSS per pod (MiB) | anonymous (MiB) |\n|---|---:|---|---:|---:|"
    );
    for ((system, pods), m) in &r.pod_memory {
        let per_pod = |kib: u64| kib as f64 / 1024.0 / (*pods).max(1) as f64;
        let processes: Vec<String> = m
            .kinds
            .iter()
            .map(|(kind, (n, _, _))| format!("{n} {kind}"))
            .collect();
        let (pss, anon) = m.total_kib();
        let _ = writeln!(
            md,
            "| {system} | {pods} | {} | {:.2} | {:.2} |",
            processes.join(" + "),
            per_pod(pss),
            per_pod(anon)
        );
        bars.push((
            format!("{system}, {pods} pods"),
            m.kinds
                .iter()
                .map(|(kind, (_, pss, _))| (kind.to_string(), per_pod(*pss)))
                .collect(),
        ));
    }
    md.push('\n');
    bars
}

/// Where the time of crid's RPCs goes: its handler against the client's view.
fn rpc_split(md: &mut String, input: &ReportInput) {
    let r = input.results;
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![];
    for (i, rpc) in ["RunPodSandbox", "CreateContainer", "StartContainer"]
        .into_iter()
        .enumerate()
    {
        let handler: Vec<f64> = r
            .crid_pods
            .iter()
            .filter_map(|(sandbox, container, _)| {
                let id = if i == 0 { sandbox } else { container };
                let p = input.crid_phases.get(&(rpc.to_string(), id.clone()))?;
                Some(p.2 as f64 / 1000.0)
            })
            .collect();
        rows.push((rpc, r.get(CRID, &format!("start/{rpc}")).to_vec(), handler));
    }
    let rounds = super::workload::relist_rounds_in_crid(&input.crid_rpcs);
    for (i, rpc) in ["ListPodSandbox", "ListContainers", "ContainerStatus"]
        .into_iter()
        .enumerate()
    {
        let handler = rounds.iter().map(|x| x[i] as f64 / 1000.0).collect();
        rows.push((rpc, r.get(CRID, &format!("relist/{rpc}")).to_vec(), handler));
    }
    let relist_client = r.get(CRID, "relist/total").to_vec();
    let relist_handler: Vec<f64> = rounds
        .iter()
        .map(|x| x.iter().sum::<u64>() as f64 / 1000.0)
        .collect();
    rows.push(("relist (3 RPCs)", relist_client, relist_handler));
    if rows.iter().all(|(_, c, h)| c.is_empty() || h.is_empty()) {
        return;
    }
    let _ = writeln!(md, "## Inside crid and on the wire\n");
    let _ = writeln!(
        md,
        "Time in crid's RPC handler (crid's `rpc ok` and `crid::phases` debug events; pod starts: the operation's own clock) against the time the client measured. The rest is the gRPC round trip: HTTP/2 and protobuf on both sides, the client library, and the wake-ups of two processes.\n"
    );
    let _ = writeln!(
        md,
        "| RPC | n | client p50 | crid p50 | client − crid (p50s) | client p99 | crid p99 |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (rpc, client, handler) in rows {
        if client.is_empty() || handler.is_empty() {
            continue;
        }
        let (c, h) = (summarize(&client), summarize(&handler));
        let _ = writeln!(
            md,
            "| {rpc} | {} | {} | {} | {} | {} | {} |",
            h.n,
            fmt(c.p50),
            fmt(h.p50),
            fmt(c.p50 - h.p50),
            fmt(c.p99),
            fmt(h.p99)
        );
    }
    let (hot, idle) = &input.round_trip_floor_us;
    if !hot.is_empty() && !idle.is_empty() {
        let (h, i) = (summarize(hot), summarize(idle));
        let _ = writeln!(
            md,
            "\nThe machine's floor, for scale: one byte there and back over a unix socket pair between two threads takes {} µs at p50 ({} µs p99) back to back, and {} µs ({} µs p99) after 10 ms idle. A unary gRPC call makes several such crossings.\n",
            fmt(h.p50),
            fmt(h.p99),
            fmt(i.p50),
            fmt(i.p99)
        );
    } else {
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_target_is_stated_at_100_pods() {
        assert_eq!(
            rss_at_target_pods(100, 18.4, 40.0),
            ("18.4 MiB".to_string(), "**met**")
        );
        assert_eq!(rss_at_target_pods(100, 41.0, 40.0).1, "**missed**");
        assert_eq!(
            rss_at_target_pods(30, 18.4, 40.0),
            (
                "18.4 MiB at 30 pods".to_string(),
                "not measured at 100 pods"
            )
        );
        assert_eq!(rss_at_target_pods(150, 20.0, 40.0).1, "**met**");
        assert_eq!(
            rss_at_target_pods(150, 41.0, 40.0).1,
            "not measured at 100 pods"
        );
        assert_eq!(
            rss_at_target_pods(100, f64::NAN, 40.0),
            ("–".to_string(), "not measured")
        );
        let row = target_row(
            "x",
            &measured_text(f64::NAN, " ms"),
            "not measured",
            3.0,
            " ms",
        );
        assert_eq!(row, "| x ≤ 3.00 ms | – | not measured |\n");
    }
}
