//! The in-memory index of sandboxes, rebuilt from containerd at start-up.
//! Metadata that must survive restarts lives in the sandbox container's
//! extension in containerd; this store is only an index over it.

use crate::cri::PodSandboxConfig;
use crate::error::Result;
use crate::util::index::IdIndex;
use crate::util::names::NameRegistry;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// What crid records about a sandbox in containerd (extension `io.crid.metadata`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxMetadata {
    pub id: String,
    pub config: PodSandboxConfig,
    /// Pinned network namespace; `None` for host-network pods.
    pub netns_path: Option<PathBuf>,
    pub runtime_handler: String,
    pub created_at: i64,
    pub ip: String,
    pub additional_ips: Vec<String>,
    /// The pod runs without a pause container (`drop_pause_container`):
    /// crid pins its IPC and UTS namespaces itself, at these paths.
    #[serde(default)]
    pub without_pause: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_ns_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts_ns_path: Option<PathBuf>,
    /// The pod's own user namespace (`hostUsers: false`): its mapping, and
    /// where crid pinned it. The pinned network (and, without a pause
    /// container, IPC and UTS) namespaces are owned by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<crate::network::userns::PodUserns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ns_path: Option<PathBuf>,
}

impl SandboxMetadata {
    /// The pod's own user namespace: where it is pinned, and its mapping.
    pub fn pod_userns(&self) -> Option<(&std::path::Path, crate::network::userns::PodUserns)> {
        self.user_ns_path.as_deref().zip(self.userns)
    }
    /// kubelet's unique sandbox name: `<name>_<namespace>_<uid>_<attempt>`.
    pub fn name_key(&self) -> String {
        sandbox_name_key(&self.config)
    }
    pub fn name(&self) -> &str {
        self.config
            .metadata
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.config
            .metadata
            .as_ref()
            .map(|m| m.namespace.as_str())
            .unwrap_or("")
    }
    pub fn uid(&self) -> &str {
        self.config
            .metadata
            .as_ref()
            .map(|m| m.uid.as_str())
            .unwrap_or("")
    }
}

pub fn sandbox_name_key(config: &PodSandboxConfig) -> String {
    let m = config.metadata.clone().unwrap_or_default();
    format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// Volatile status, derived from containerd (task state) and events.
#[derive(Debug, Clone)]
pub struct SandboxStatus {
    pub state: SandboxState,
    pub pid: u32,
    /// What kubelet last sent in UpdatePodSandboxResources.
    pub resources: Option<Arc<super::resources::PodResources>>,
}

pub struct Sandbox {
    pub meta: SandboxMetadata,
    pub status: RwLock<SandboxStatus>,
    /// Serialises stop/remove of this sandbox (never held across the store lock).
    pub op: tokio::sync::Mutex<()>,
    /// Serialises the mounting of the pod's image volumes.
    pub image_volumes: tokio::sync::Mutex<()>,
}

impl Sandbox {
    pub fn new(meta: SandboxMetadata, status: SandboxStatus) -> Arc<Self> {
        Arc::new(Sandbox {
            meta,
            status: RwLock::new(status),
            op: tokio::sync::Mutex::new(()),
            image_volumes: tokio::sync::Mutex::new(()),
        })
    }
    pub fn id(&self) -> &str {
        &self.meta.id
    }
    pub fn status(&self) -> SandboxStatus {
        self.status.read().unwrap().clone()
    }
    /// Set the state; returns the one it replaced.
    pub fn set_state(&self, state: SandboxState) -> SandboxState {
        std::mem::replace(&mut self.status.write().unwrap().state, state)
    }
}

pub struct SandboxStore {
    index: IdIndex<Sandbox>,
    pub names: NameRegistry,
}

impl Default for SandboxStore {
    fn default() -> Self {
        SandboxStore {
            index: IdIndex::new("pod sandbox", "pod_sandbox_id"),
            names: NameRegistry::default(),
        }
    }
}

impl SandboxStore {
    pub fn insert(&self, sandbox: Arc<Sandbox>) {
        self.index.insert(&sandbox.meta.id, sandbox.clone());
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Sandbox>> {
        let s = self.index.remove(id)?;
        self.names.release(&s.meta.name_key(), id);
        Some(s)
    }

    /// Look up by full id or unique prefix (as crictl allows).
    pub fn get(&self, id: &str) -> Result<Arc<Sandbox>> {
        self.index.get(id)
    }

    pub fn list(&self) -> Vec<Arc<Sandbox>> {
        self.index.list()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}
