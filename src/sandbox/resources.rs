//! The pod-level resources of `UpdatePodSandboxResources` (CRI 1.33+,
//! in-place pod resize; the RPC is `runtime::sandbox_resources`). kubelet
//! resizes the pod's cgroup itself and then tells the runtime the pod-level
//! resources and overhead; the runtime records them, as containerd's CRI
//! does. crid keeps them in the sandbox directory (`pod-resources.json`,
//! replaced atomically), so they survive a restart, and shows them in
//! PodSandboxStatus's verbose info.

use crate::cri::LinuxContainerResources;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The file in the sandbox directory that holds them.
pub(crate) const FILE: &str = "pod-resources.json";

/// What kubelet last said about a pod's resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodResources {
    pub overhead: Option<LinuxContainerResources>,
    pub resources: Option<LinuxContainerResources>,
}

/// The recorded resources of the sandbox whose directory is `dir`, if any.
pub fn load(dir: &Path) -> Option<Arc<PodResources>> {
    match crate::util::persist::read_json(&dir.join(FILE)) {
        Ok(r) => r.map(Arc::new),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot read the pod's recorded resources: {e}");
            None
        }
    }
}
