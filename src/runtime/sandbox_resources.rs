//! `UpdatePodSandboxResources` (CRI 1.33+, in-place pod resize): validates
//! and records what kubelet says (`sandbox::resources` keeps it).

use crate::cri::LinuxContainerResources;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::sandbox::resources::{PodResources, FILE};
use std::sync::Arc;

impl Runtime {
    pub async fn update_pod_sandbox_resources(
        &self,
        id: &str,
        overhead: Option<LinuxContainerResources>,
        resources: Option<LinuxContainerResources>,
    ) -> Result<()> {
        let sandbox = self.sandboxes.get(id)?;
        if let Some(r) = &resources {
            crate::cri::validate::resources("resources", r)?;
        }
        // The overhead is an amount added to the pod's limits, not a limit
        // of its own: a small memory overhead is fine.
        if let Some(r) = &overhead {
            if r.memory_limit_in_bytes < 0 {
                return Err(Error::invalid("overhead.memory_limit_in_bytes is negative"));
            }
            crate::cri::validate::resources(
                "overhead",
                &LinuxContainerResources {
                    memory_limit_in_bytes: 0,
                    ..r.clone()
                },
            )?;
        }
        let _op = sandbox.op.lock().await;
        // Removed while this waited for the lock.
        if !self.sandboxes.get(id).is_ok_and(|s| s.id() == sandbox.id()) {
            return Err(Error::not_found(format!("pod sandbox {id} was removed")));
        }
        let record = PodResources {
            overhead,
            resources,
        };
        crate::util::persist::replace_json(
            &self.config.sandbox_dir(sandbox.id()).join(FILE),
            &record,
        )?;
        sandbox.status.write().unwrap().resources = Some(Arc::new(record));
        tracing::info!(sandbox = %sandbox.id(), "pod resources recorded");
        Ok(())
    }
}
