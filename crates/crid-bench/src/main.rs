//! crid-bench: one run compares crid, containerd's CRI plugin and the docker
//! path (dockershim's steps) on the same machine, interleaved round by round.
//! `scripts/bench.sh` (`make bench`) starts the peers and calls this.

use anyhow::Context;
use clap::Parser;
use crid::config::CniConfig;
use crid::migrate::docker::engine::Docker;
use crid::network::cni::Cni;
use crid_bench::backend::{docker_ping, Backend, DockerBackend};
use crid_bench::cold::{Collector, ImageLayers};
use crid_bench::pull::ColdCheck;
use crid_bench::report::{self, ReportInput};
use crid_bench::workload::{self, Options, System, Workload, Workloads};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "crid-bench", about = "CRI / docker-path benchmark")]
struct Cli {
    /// Workloads to run: start,conc,stop,relist,exec,pull (or all).
    #[arg(long, default_value = "all")]
    workloads: String,
    /// crid's CRI endpoint (unix:///path).
    #[arg(long)]
    crid: Option<String>,
    #[arg(long)]
    crid_pid: Option<u32>,
    /// crid's log file (for its `crid::phases` debug events).
    #[arg(long)]
    crid_log: Option<PathBuf>,
    /// A second crid, configured with `drop_pause_container = false` (a
    /// pause container for every pod): benchmarked as the system
    /// `crid-pause`.
    #[arg(long)]
    crid_pause: Option<String>,
    #[arg(long)]
    crid_pause_pid: Option<u32>,
    #[arg(long, default_value = "crid-bench-pause")]
    crid_pause_namespace: String,
    /// A third crid whose default runtime handler is containerd's runc
    /// shim, with a crid-logger per container (crid's default before its
    /// own shim): benchmarked as the system `crid-runc`.
    #[arg(long)]
    crid_runc: Option<String>,
    #[arg(long)]
    crid_runc_pid: Option<u32>,
    #[arg(long, default_value = "crid-bench-runc")]
    crid_runc_namespace: String,
    /// crid-runc's log file (its `crid::phases` debug events: the shim
    /// start against crid's).
    #[arg(long)]
    crid_runc_log: Option<PathBuf>,
    /// containerd's CRI plugin endpoint.
    #[arg(long)]
    containerd_cri: Option<String>,
    #[arg(long)]
    containerd_pid: Option<u32>,
    /// containerd's socket address (to find its shims).
    #[arg(long, default_value = "")]
    containerd_address: String,
    /// crid's containerd namespace (shims).
    #[arg(long, default_value = "k8s.io")]
    crid_namespace: String,
    /// dockerd's socket path.
    #[arg(long)]
    docker: Option<PathBuf>,
    #[arg(long)]
    dockerd_pid: Option<u32>,
    /// The containerd dockerd uses, if it is not the shared one.
    #[arg(long)]
    docker_containerd_pid: Option<u32>,
    /// App image as CRI endpoints see it (present before the run).
    #[arg(long)]
    image: String,
    /// App and pause images in dockerd.
    #[arg(long, default_value = "bench/busybox:v1")]
    docker_image: String,
    #[arg(long, default_value = "bench/pause:v1")]
    docker_pause_image: String,
    /// CNI config dir + cache dir for the docker path.
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
    #[arg(long)]
    cni_cache_dir: Option<PathBuf>,
    #[arg(long, default_value = "/usr/lib/cni")]
    cni_bin_dir: Vec<PathBuf>,
    #[arg(long, default_value = "/var/log/pods")]
    log_root: String,
    /// Pods per system for the sequential start / relist / stop workloads.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    #[arg(long, default_value_t = 10)]
    batch: usize,
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    concurrency: Vec<usize>,
    #[arg(long, default_value_t = 2)]
    concurrency_rounds: usize,
    #[arg(long, default_value_t = 200)]
    relist_iterations: usize,
    #[arg(long, default_value_t = 50)]
    exec_iterations: usize,
    /// Large image to pull (registry reference).
    #[arg(long)]
    pull_image: Option<String>,
    #[arg(long, default_value_t = 3)]
    pull_rounds: usize,
    /// Layer digests of the pull image (sha256:…), in manifest order: a pull
    /// counts as cold only when none of them is in containerd.
    #[arg(long)]
    pull_layer: Vec<String>,
    /// Diff IDs of those layers (from the image config), same order: their
    /// snapshots must be gone too.
    #[arg(long)]
    pull_diff_id: Vec<String>,
    /// containerd's root directory (to check the blob files themselves).
    #[arg(long)]
    containerd_root: Option<PathBuf>,
    /// containerd snapshotter the CRI endpoints unpack into.
    #[arg(long, default_value = "overlayfs")]
    snapshotter: String,
    /// Pull with dockerd too.
    #[arg(long)]
    docker_pull: bool,
    /// Markdown file with machine, versions and command.
    #[arg(long)]
    preamble: Option<PathBuf>,
    /// Markdown file appended at the end (analysis).
    #[arg(long)]
    epilogue: Option<PathBuf>,
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    #[arg(long, default_value = "bench")]
    plot_dir: PathBuf,
    /// Raw samples as JSON (optional).
    #[arg(long)]
    raw: Option<PathBuf>,
}

/// The pull image's layers and a containerd connection to collect in, when
/// the pull workload runs and containerd's address is known.
async fn cold_check(cli: &Cli, workloads: &Workloads) -> anyhow::Result<ColdCheck> {
    if !workloads.has(Workload::Pull) {
        return Ok(ColdCheck::default());
    }
    anyhow::ensure!(
        cli.pull_diff_id.is_empty() || cli.pull_diff_id.len() == cli.pull_layer.len(),
        "--pull-diff-id must be given once per --pull-layer"
    );
    let layers = ImageLayers::new(cli.pull_layer.clone(), &cli.pull_diff_id);
    let collector = if cli.containerd_address.is_empty() || cli.pull_layer.is_empty() {
        eprintln!("crid-bench: no --containerd-address/--pull-layer: cold pulls are not checked");
        None
    } else {
        Some(
            Collector::connect(
                std::path::Path::new(&cli.containerd_address),
                cli.containerd_root.clone(),
                &cli.snapshotter,
            )
            .await?,
        )
    };
    Ok(ColdCheck { layers, collector })
}

// One thread: a request, its connection task and its response meet on the
// same thread, so the client adds no cross-thread wake-ups to each RPC (on
// this 2-core VM a relist RPC went from about 1.0 to 0.4 ms at p50). Every
// system is measured through the same client.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let workloads = Workloads::parse(&cli.workloads)?;
    anyhow::ensure!(
        !workloads.has(Workload::Pull) || cli.pull_image.is_some(),
        "the pull workload needs --pull-image"
    );
    let mut systems = vec![];
    let ctrd_pid = cli.containerd_pid;
    let with_ctrd = |mut v: Vec<(String, u32)>| {
        if let Some(p) = ctrd_pid {
            v.push(("containerd".into(), p));
        }
        v
    };
    // crid, the second crid with pause containers and the third on
    // containerd's runc shim (neither of these two pulls).
    let crids = [
        ("crid", &cli.crid, cli.crid_pid, &cli.crid_namespace, true),
        (
            "crid-pause",
            &cli.crid_pause,
            cli.crid_pause_pid,
            &cli.crid_pause_namespace,
            false,
        ),
        (
            "crid-runc",
            &cli.crid_runc,
            cli.crid_runc_pid,
            &cli.crid_runc_namespace,
            false,
        ),
    ];
    for (name, endpoint, pid, namespace, pulls) in crids {
        let Some(ep) = endpoint else { continue };
        systems.push(System {
            name: name.into(),
            backend: Backend::cri(ep, &cli.image, &cli.log_root).await?,
            pids: with_ctrd(
                pid.map(|p| vec![("crid".to_string(), p)])
                    .unwrap_or_default(),
            ),
            shim_namespace: Some(namespace.clone()),
            pulls,
            pods: vec![],
        });
    }
    if let Some(ep) = &cli.containerd_cri {
        systems.push(System {
            name: "containerd-cri".into(),
            backend: Backend::cri(ep, &cli.image, &cli.log_root).await?,
            pids: with_ctrd(vec![]),
            shim_namespace: Some("k8s.io".into()),
            pulls: true,
            pods: vec![],
        });
    }
    if let Some(sock) = &cli.docker {
        let d = Docker::new(sock);
        anyhow::ensure!(
            docker_ping(&d).await,
            "dockerd does not answer on {}",
            sock.display()
        );
        let conf_dir = cli
            .cni_conf_dir
            .clone()
            .context("--cni-conf-dir is needed for the docker path")?;
        let cache = cli
            .cni_cache_dir
            .clone()
            .context("--cni-cache-dir is needed for the docker path")?;
        let cni = Cni::new(
            &CniConfig {
                conf_dir,
                bin_dirs: cli.cni_bin_dir.clone(),
                plugin_timeout_secs: 30,
            },
            cache,
        );
        let mut pids = vec![];
        if let Some(p) = cli.dockerd_pid {
            pids.push(("dockerd".to_string(), p));
        }
        match cli.docker_containerd_pid {
            Some(p) => pids.push(("containerd (docker's)".to_string(), p)),
            None => pids = with_ctrd(pids),
        }
        systems.push(System {
            name: "docker".into(),
            backend: Backend::Docker(DockerBackend {
                docker: d,
                pause_image: cli.docker_pause_image.clone(),
                image: cli.docker_image.clone(),
                cni: Arc::new(cni),
            }),
            pids,
            shim_namespace: Some("moby".into()),
            pulls: cli.docker_pull,
            pods: vec![],
        });
    }
    anyhow::ensure!(
        !systems.is_empty(),
        "no system to benchmark (--crid, --containerd-cri, --docker)"
    );
    let names: Vec<String> = systems.iter().map(|s| s.name.clone()).collect();
    eprintln!("crid-bench: systems {names:?}, {} pods each", cli.pods);

    eprintln!("crid-bench: workloads {}", workloads.names().join(","));

    let options = Options {
        pull_cold: Arc::new(cold_check(&cli, &workloads).await?),
        workloads,
        pods: cli.pods,
        batch: cli.batch.max(1),
        concurrency: cli.concurrency.clone(),
        concurrency_rounds: cli.concurrency_rounds,
        relist_iterations: cli.relist_iterations,
        exec_iterations: cli.exec_iterations,
        pull_image: cli.pull_image.clone(),
        pull_rounds: cli.pull_rounds,
        containerd_address: cli.containerd_address.clone(),
    };
    let results = workload::run(&mut systems, &options).await?;

    std::fs::create_dir_all(&cli.plot_dir)?;
    if let Some(raw) = &cli.raw {
        std::fs::write(raw, serde_json::to_vec_pretty(&results.samples)?)?;
    }
    let read = |p: &Option<PathBuf>| {
        p.as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let crid_log = read(&cli.crid_log);
    let crid_phases = workload::parse_phase_log(&crid_log);
    let crid_rpcs = workload::parse_rpc_log(&crid_log);
    // The pod's shim starts in StartContainer's task create (no pause
    // container on either), counted for the sequential starts only.
    let shim_starts = [
        ("crid", &crid_log),
        ("crid-runc", &read(&cli.crid_runc_log)),
    ]
    .into_iter()
    .map(|(system, log)| {
        let sequential = results.sequential_containers.get(system);
        let ms = workload::parse_step_log(log, "StartContainer", "task_create")
            .into_iter()
            .filter(|(id, _)| sequential.is_some_and(|ids| ids.contains(id)))
            .map(|(_, ms)| ms)
            .collect::<Vec<_>>();
        (system.to_string(), ms)
    })
    .filter(|(_, ms)| !ms.is_empty())
    .collect();
    let round_trip_floor_us = (
        crid_bench::floor::unix_round_trips(1000, std::time::Duration::ZERO)?,
        crid_bench::floor::unix_round_trips(200, std::time::Duration::from_millis(10))?,
    );
    // Plots are linked relative to the Markdown file when they sit below it.
    let md_dir = cli.out.parent().unwrap_or(std::path::Path::new(""));
    let link = cli
        .plot_dir
        .strip_prefix(md_dir)
        .unwrap_or(&cli.plot_dir)
        .to_string_lossy()
        .to_string();
    report::write(
        &ReportInput {
            results: &results,
            systems: names,
            preamble: read(&cli.preamble),
            crid_phases,
            crid_rpcs,
            shim_starts,
            round_trip_floor_us,
            pods: cli.pods,
            plot_dir: &cli.plot_dir,
            plot_link: link,
            epilogue: read(&cli.epilogue),
        },
        &cli.out,
    )?;
    eprintln!(
        "crid-bench: wrote {} and plots in {}",
        cli.out.display(),
        cli.plot_dir.display()
    );
    Ok(())
}
