//! The `crid` binary: command line, configuration, logging, signals.

use clap::{Parser, Subcommand};
use crid::config::{Config, DEFAULT_CONFIG_PATH};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "crid", version, about = "Kubernetes CRI server on containerd")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// CRI socket to serve, unix:///path.
    #[arg(long)]
    listen: Option<String>,
    /// containerd gRPC socket.
    #[arg(long)]
    containerd_address: Option<PathBuf>,
    /// containerd namespace.
    #[arg(long)]
    containerd_namespace: Option<String>,
    /// Persistent data directory.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Volatile state directory.
    #[arg(long)]
    state: Option<PathBuf>,
    /// CNI network config directory.
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
    /// CNI plugin directories, colon-separated.
    #[arg(long)]
    cni_bin_dir: Option<String>,
    /// Registry hosts directory (containerd's `<host>/hosts.toml` format).
    #[arg(long)]
    registry_config_path: Option<PathBuf>,
    /// Pod sandbox (pause) image.
    #[arg(long)]
    sandbox_image: Option<String>,
    /// Streaming server address (exec/attach/port-forward).
    #[arg(long)]
    stream_address: Option<String>,
    /// Prometheus metrics address.
    #[arg(long)]
    metrics_address: Option<String>,
    /// Log level or tracing filter.
    #[arg(long)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Preflight before kubelet is switched over to crid: containerd, its
    /// CRI plugin, snapshotter, runtimes, CNI, cgroups, capabilities, pod
    /// logs, sandbox image, CDI. Exits 1 on a blocker, 0 otherwise.
    Check(CheckArgs),
    /// Take over the pods containerd's own CRI plugin ran (with crid
    /// stopped and the plugin disabled): prints what it will do; changes
    /// things only with --apply.
    Adopt(AdoptArgs),
    /// Carry another runtime's images and registry settings into crid.
    Migrate {
        #[command(subcommand)]
        source: crid::migrate::Source,
    },
}

#[derive(clap::Args, Debug)]
struct AdoptArgs {
    /// Carry out the plan (default: dry run).
    #[arg(long)]
    apply: bool,
    /// containerd's root directory (default: found from containerd).
    #[arg(long, value_name = "DIR")]
    containerd_root: Option<PathBuf>,
    /// containerd's state directory (default: found from its tasks, else /run/containerd).
    #[arg(long, value_name = "DIR")]
    containerd_state: Option<PathBuf>,
    /// libcni's cache directory of containerd's CRI plugin.
    #[arg(long, value_name = "DIR", default_value = crid::adopt::cri_plugin::LIBCNI_CACHE_DIR)]
    cni_cache_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// kubelet's KubeletConfiguration file, to compare its cgroupDriver.
    #[arg(long, value_name = "FILE")]
    kubelet_config: Option<PathBuf>,
    /// Directory kubelet has container logs written to.
    #[arg(long, value_name = "DIR", default_value = "/var/log/pods")]
    pod_log_dir: PathBuf,
    /// Run only these groups (containerd, runtimes, network, cgroups, node, cdi).
    #[arg(long, value_name = "GROUP", value_delimiter = ',')]
    only: Vec<crid::preflight::Group>,
    /// `table` or `json`.
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    output: String,
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Print the full default configuration.
    Default,
    /// Print the effective configuration (file + flags).
    Show,
}

impl Cli {
    fn load_config(&self) -> Result<Config, String> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut c = Config::load(&path, required).map_err(|e| e.to_string())?;
        if let Some(v) = &self.listen {
            c.listen = v.clone();
        }
        if let Some(v) = &self.containerd_address {
            c.containerd.address = v.clone();
        }
        if let Some(v) = &self.containerd_namespace {
            c.containerd.namespace = v.clone();
        }
        if let Some(v) = &self.root {
            c.root = v.clone();
        }
        if let Some(v) = &self.state {
            c.state = v.clone();
        }
        if let Some(v) = &self.cni_conf_dir {
            c.cni.conf_dir = v.clone();
        }
        if let Some(v) = &self.cni_bin_dir {
            c.cni.bin_dirs = v
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        if let Some(v) = &self.registry_config_path {
            c.registry.config_path = v.clone();
        }
        if let Some(v) = &self.sandbox_image {
            c.sandbox_image = v.clone();
        }
        if let Some(v) = &self.stream_address {
            c.stream_address = v.clone();
        }
        if let Some(v) = &self.metrics_address {
            c.metrics_address = v.clone();
        }
        if let Some(v) = &self.log_level {
            c.log_level = v.clone();
        }
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }
}

fn main() -> ExitCode {
    crid::util::platform::fix_malloc_thresholds();
    let cli = Cli::parse();
    if let Some(Command::Config { action }) = &cli.command {
        return match action {
            ConfigAction::Default => {
                print!("{}", Config::default().to_toml());
                ExitCode::SUCCESS
            }
            ConfigAction::Show => match cli.load_config() {
                Ok(c) => {
                    print!("{}", c.to_toml());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("crid: {e}");
                    ExitCode::from(2)
                }
            },
        };
    }
    let config = match cli.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("crid: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Check(args)) = &cli.command {
        return check(&config, args);
    }
    if let Some(Command::Migrate { source }) = &cli.command {
        let Some(rt) = tokio_runtime() else {
            return ExitCode::FAILURE;
        };
        return rt.block_on(crid::migrate::run(&config, source));
    }
    // crid adopt prints its table on stdout; its start-up lines would bury it.
    let quiet = matches!(cli.command, Some(Command::Adopt(_))) && cli.log_level.is_none();
    init_logging(if quiet { "warn" } else { &config.log_level });
    let Some(rt) = tokio_runtime() else {
        return ExitCode::FAILURE;
    };
    let outcome = match &cli.command {
        Some(Command::Adopt(args)) => {
            let opts = crid::adopt::AdoptOptions {
                containerd_root: args.containerd_root.clone(),
                containerd_state: args.containerd_state.clone(),
                cni_cache_dir: Some(args.cni_cache_dir.clone()),
            };
            rt.block_on(crid::adopt::run(
                config,
                &opts,
                args.apply,
                &mut std::io::stdout(),
            ))
            .map_err(anyhow::Error::from)
        }
        _ => rt.block_on(run(config)).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("crid: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `crid check`: the preflight (src/preflight/), as a table or JSON.
/// Exits 1 on a blocker; warnings alone exit 0.
fn check(config: &Config, args: &CheckArgs) -> ExitCode {
    let opts = crid::preflight::Options {
        kubelet_config: args.kubelet_config.clone(),
        pod_log_dir: args.pod_log_dir.clone(),
        only: args.only.clone(),
        ..Default::default()
    };
    let Some(rt) = tokio_runtime() else {
        return ExitCode::FAILURE;
    };
    let report = rt.block_on(crid::preflight::run(config, &opts));
    if args.output == "json" {
        print!("{}", crid::preflight::render_json(&report));
    } else {
        print!("{}", crid::preflight::render_table(&report));
    }
    if report.has_blocker() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The multi-threaded tokio runtime; `None` (said on stderr) when it
/// cannot be started.
fn tokio_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("crid: cannot start tokio: {e}");
            None
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(config: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let socket = config.listen_path()?;
    // Handlers first: a SIGTERM that arrives once the socket exists must
    // take the graceful path (and remove the socket), never the default one.
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let runtime = Arc::new(crid::runtime::Runtime::new(config).await?);
    let listener = crid::server::bind_socket(&socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    runtime.start().await;
    let scraped = runtime.clone();
    let gauges = move || scraped.metric_gauges();
    if let Err(e) = crid::metrics::http::start(&runtime.config.metrics_address, gauges).await {
        let _ = std::fs::remove_file(&socket);
        return Err(e.into());
    }
    tracing::info!(socket = %socket.display(), version = crid::VERSION, "crid serving CRI");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        let _ = stop_tx.send(());
    });
    let (drained_tx, mut drained_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stop_rx.await;
        let _ = drained_tx.send(());
    };
    let server = crid::server::serve(runtime.clone(), listener, shutdown);
    tokio::pin!(server);
    // Serve; once a signal arrives, give in-flight RPCs a bounded time to finish.
    tokio::select! {
        r = &mut server => r?,
        _ = &mut drained_rx => {
            if tokio::time::timeout(Duration::from_secs(10), &mut server).await.is_err() {
                tracing::warn!("in-flight RPCs did not finish within 10s; exiting");
            }
        }
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("crid stopped");
    Ok(())
}
