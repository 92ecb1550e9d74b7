//! The domain root: built once at start-up, shared by the gRPC services.
//! Owns the containerd adapter, the stores and the per-concern services, and
//! every RPC's flow as an `impl Runtime` block, one file per RPC family
//! (`sandbox_run.rs`, `container_create.rs`, `stats.rs`, ...), plus what
//! runs beside them: the exit monitor, the event bus, restart recovery,
//! runtime handler features. It imports the domains (`sandbox/`,
//! `container/`, `image/`, `network/`, `stream/`) and the adapter; none of
//! them imports it. No lock is held across a containerd call except an
//! object's own `op` lock.

mod container_create;
mod container_image_volume;
mod container_lifecycle;
mod container_oci;
mod container_update;
pub mod events;
pub mod exits;
pub mod handlers;
pub mod introspect;
pub mod recovery;
mod rootfs;
mod sandbox_lifecycle;
mod sandbox_pause;
mod sandbox_resources;
pub mod sandbox_run;
pub mod stats;

use crate::config::Config;
use crate::container::ContainerStore;
use crate::containerd::{Containerd, Event, EventKind};
use crate::error::Result;
use crate::image::ImageService;
use crate::network::cni::Cni;
use crate::runtime::exits::ExitMonitor;
use crate::sandbox::{SandboxState, SandboxStore};
use crate::stream::StreamService;
use std::sync::Arc;

pub struct Runtime {
    pub config: Config,
    pub containerd: Containerd,
    pub images: ImageService,
    pub stream: StreamService,
    pub cni: Cni,
    pub sandboxes: Arc<SandboxStore>,
    pub containers: ContainerStore,
    pub exits: ExitMonitor,
    pub cpu_rates: crate::runtime::stats::CpuRates,
    pub events: crate::runtime::events::EventBus,
    /// Images' /etc/passwd and /etc/group, by chain id.
    pub image_users: crate::container::user_files::UserFilesCache,
    /// What each runtime handler supports (detected at start).
    pub handlers: crate::runtime::handlers::RuntimeHandlers,
    /// CDI spec dirs and the devices they define.
    pub cdi: Arc<crate::container::cdi::CdiRegistry>,
    snapshotter_root: tokio::sync::OnceCell<String>,
    recovered: std::sync::atomic::AtomicBool,
}

/// One CRI runtime condition (`RuntimeReady`, `NetworkReady`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: &'static str,
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

impl Runtime {
    pub async fn new(config: Config) -> Result<Self> {
        let containerd = Containerd::new(
            &config.containerd.address,
            &config.containerd.namespace,
            &config.containerd.snapshotter,
        )?;
        let images = ImageService::new(containerd.clone(), &config);
        let sandboxes = Arc::new(SandboxStore::default());
        let lookup_store = sandboxes.clone();
        let netns_lookup: crate::stream::NetnsLookup =
            Arc::new(move |id: &str| lookup_store.get(id).ok().map(|s| s.meta.netns_path.clone()));
        let stream = StreamService::new(containerd.clone(), &config, netns_lookup);
        let cni = Cni::new(&config.cni, config.root.join("cni-cache"));
        let exits = ExitMonitor::new(containerd.clone());
        let handlers = crate::runtime::handlers::RuntimeHandlers::detect(&config.containerd).await;
        // Which cgroup controllers specs may use: detected (and logged) now.
        crate::util::platform::cgroups::Cgroups::host();
        // Read the CDI specs once now, so broken ones are logged at start.
        let cdi = Arc::new(crate::container::cdi::CdiRegistry::new(&config.cdi));
        if cdi.enabled() {
            let registry = cdi.clone();
            let listing = tokio::task::spawn_blocking(move || registry.list())
                .await
                .unwrap_or_default();
            tracing::info!(
                devices = listing.devices.len(),
                dirs = ?listing.spec_dirs,
                "CDI devices found"
            );
        }
        Ok(Runtime {
            config,
            containerd,
            images,
            stream,
            cni,
            sandboxes,
            containers: ContainerStore::default(),
            exits,
            cpu_rates: Default::default(),
            events: Default::default(),
            image_users: Default::default(),
            handlers,
            cdi,
            snapshotter_root: Default::default(),
            recovered: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Background work started once the socket is bound: recovery, the
    /// event loop, the streaming server, the sandbox image.
    pub async fn start(self: &Arc<Self>) {
        if let Err(e) = self.stream.start(&self.config.stream_address).await {
            tracing::error!("streaming server: {e}");
        }
        let images = self.images.clone();
        tokio::spawn(async move {
            if let Err(e) = images.ensure_sandbox_image().await {
                tracing::warn!("sandbox image not ready: {e}");
            }
        });
        // Recover before serving, so kubelet's first list sees every pod.
        if self.containerd.healthy().await.is_ok() {
            match self.recover().await {
                Ok(()) => self
                    .recovered
                    .store(true, std::sync::atomic::Ordering::SeqCst),
                Err(e) => tracing::warn!(error = %e, "recovery from containerd failed; will retry"),
            }
        }
        let (reconnected_tx, mut reconnected_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut events = self.exits.take_receiver().expect("start runs once");
        self.exits.spawn_subscription(reconnected_tx);
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ev) = events.recv() => rt.handle_event(ev).await,
                    Some(()) = reconnected_rx.recv() => rt.reconcile().await,
                    else => return,
                }
            }
        });
    }

    /// Apply one containerd event to the stores.
    pub(crate) async fn handle_event(self: &Arc<Self>, ev: Event) {
        match ev.kind {
            EventKind::Exit {
                exec_id,
                code,
                exited_at,
                ..
            } if exec_id.is_empty() => {
                if let Ok(c) = self.containers.get(&ev.container_id) {
                    if c.id() == ev.container_id {
                        // Recording an exit waits for Tasks.Delete (and the
                        // logger's drain): never hold up other events for it.
                        let rt = self.clone();
                        tokio::spawn(async move { rt.container_exited(&c, code, exited_at).await });
                    }
                } else if let Ok(s) = self.sandboxes.get(&ev.container_id) {
                    if s.id() == ev.container_id && self.sandbox_not_ready(&s) {
                        tracing::info!(sandbox = %s.id(), code, "pause container exited");
                        let _ = self.delete_task(s.id()).await;
                    }
                }
            }
            EventKind::Oom => {
                if let Ok(c) = self.containers.get(&ev.container_id) {
                    if c.id() == ev.container_id {
                        tracing::info!(container = %c.id(), "OOM event");
                        let _ = c.update_status(|s| s.oom_killed = true);
                    }
                }
            }
            _ => {}
        }
    }

    /// After (re)connecting to containerd: tasks that ended while nobody was
    /// listening are reported as exits.
    pub(crate) async fn reconcile(&self) {
        use crate::container::ContainerState;
        use std::sync::atomic::Ordering;
        if !self.recovered.load(Ordering::SeqCst) {
            match self.recover().await {
                Ok(()) => self.recovered.store(true, Ordering::SeqCst),
                Err(e) => tracing::warn!(error = %e, "recovery from containerd failed; will retry"),
            }
        }
        for c in self.containers.list() {
            if c.status().state != ContainerState::Running {
                continue;
            }
            match self.containerd.get_task(c.id()).await {
                Ok(Some(p)) if p.status == crate::containerd::ProcessStatus::Stopped as i32 => {
                    self.container_exited(
                        &c,
                        p.exit_status,
                        crate::containerd::timestamp_nanos(&p.exited_at),
                    )
                    .await
                }
                Ok(None) => self.container_exited(&c, 255, 0).await,
                Ok(Some(_)) => self.exits.watch(c.id()),
                Err(e) => tracing::debug!(error = %e, "reconcile: containerd not answering"),
            }
        }
        for s in self.sandboxes.list() {
            if s.status().state != SandboxState::Ready || s.meta.without_pause {
                continue;
            }
            match self.containerd.get_task(s.id()).await {
                Ok(Some(p)) if p.status != crate::containerd::ProcessStatus::Stopped as i32 => {
                    self.exits.watch(s.id())
                }
                Ok(_) => {
                    self.sandbox_not_ready(&s);
                }
                Err(_) => {}
            }
        }
    }

    /// RuntimeReady from a live containerd health check; NetworkReady from
    /// the presence of a CNI network config.
    pub async fn conditions(&self) -> Vec<Condition> {
        let runtime = match self.containerd.healthy().await {
            Ok(()) => Condition {
                kind: "RuntimeReady",
                ready: true,
                reason: String::new(),
                message: String::new(),
            },
            Err(message) => Condition {
                kind: "RuntimeReady",
                ready: false,
                reason: "ContainerdUnreachable".into(),
                message,
            },
        };
        let network = match self.cni.status() {
            Ok(()) => Condition {
                kind: "NetworkReady",
                ready: true,
                reason: String::new(),
                message: String::new(),
            },
            Err(message) => Condition {
                kind: "NetworkReady",
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!(
                    "Network plugin returns error: cni plugin not initialized: {message}"
                ),
            },
        };
        vec![runtime, network]
    }
}

impl Runtime {
    /// The pod, container and event-subscriber gauges of crid's /metrics.
    pub fn metric_gauges(&self) -> crate::metrics::Gauges {
        use std::collections::BTreeMap;
        let mut pods: BTreeMap<String, u64> = BTreeMap::new();
        for s in self.sandboxes.list() {
            *pods
                .entry(format!("{:?}", s.status().state).to_lowercase())
                .or_default() += 1;
        }
        let mut containers: BTreeMap<String, u64> = BTreeMap::new();
        for c in self.containers.list() {
            *containers
                .entry(format!("{:?}", c.status().state).to_lowercase())
                .or_default() += 1;
        }
        crate::metrics::Gauges {
            pods: pods.into_iter().collect(),
            containers: containers.into_iter().collect(),
            event_subscribers: self.events.subscribers() as u64,
        }
    }

    /// Where the snapshotter keeps its data (for filesystem stats), asked of
    /// containerd once.
    pub async fn snapshotter_mountpoint(&self) -> String {
        self.snapshotter_root
            .get_or_init(|| async {
                self.containerd
                    .snapshotter_root()
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            })
            .await
            .clone()
    }
}
