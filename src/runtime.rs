//! The domain root: built once at start-up, shared by the gRPC services.
//! Owns the containerd adapter and the per-concern services; holds no lock
//! across a containerd call.

use crate::config::Config;
use crate::containerd::Containerd;
use crate::error::Result;
use crate::image::ImageService;
use crate::network::cni;
use crate::stream::StreamService;
use std::sync::Arc;

pub struct Runtime {
    pub config: Config,
    pub containerd: Containerd,
    pub images: ImageService,
    pub stream: StreamService,
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
        // Filled in once sandboxes exist: sandbox id -> netns file.
        let netns_lookup: crate::stream::NetnsLookup = Arc::new(|_id: &str| None);
        let stream = StreamService::new(containerd.clone(), &config, netns_lookup);
        Ok(Runtime {
            config,
            containerd,
            images,
            stream,
        })
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
        let network = match cni::network_ready(&self.config.cni.conf_dir) {
            Ok(_) => Condition {
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
    /// Background work started once the socket is bound (event subscription,
    /// recovery). Returns when it is launched, not when it ends.
    pub async fn start(self: &std::sync::Arc<Self>) {
        if let Err(e) = self.stream.start(&self.config.stream_address).await {
            tracing::error!("streaming server: {e}");
        }
    }
}
