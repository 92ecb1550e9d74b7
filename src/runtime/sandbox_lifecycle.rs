//! `StopPodSandbox` and `RemovePodSandbox`: both idempotent, both work when
//! the task, the netns or the CNI state is already gone.

use crate::error::Result;
use crate::runtime::events::ContainerEventKind::{Deleted, Stopped};
use crate::runtime::sandbox_run::Progress;
use crate::runtime::Runtime;
use crate::sandbox::store::SandboxState;

impl Runtime {
    /// Stop every container of the pod, tear down its network, kill the pause
    /// task. The sandbox stays listed (NotReady) until removed.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let sandbox = match self.sandboxes.get(id) {
            Ok(s) => s,
            // kubelet may stop a sandbox crid no longer knows: nothing to do.
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = sandbox.op.lock().await;
        for c in self.containers.in_sandbox(sandbox.id()) {
            self.stop_container(c.id(), 0).await?;
        }
        let meta = &sandbox.meta;
        // Without a pause container, the pinned UTS namespace is what says
        // "ready" after a restart (`runtime/recovery.rs`): unpin it (and IPC) first.
        let pins = Progress {
            pins: crate::runtime::sandbox_run::pin_paths(meta),
            ..Default::default()
        };
        self.teardown_sandbox(meta, &pins).await?;
        let progress = Progress {
            task: !meta.without_pause,
            cni: meta.netns_path.is_some(),
            ..Default::default()
        };
        self.teardown_sandbox(meta, &progress).await?;
        self.sandbox_not_ready(&sandbox);
        tracing::info!(sandbox = %meta.id, "pod sandbox stopped");
        Ok(())
    }

    /// Mark the sandbox NotReady; the one caller that finds it Ready (stop,
    /// the pause task's exit, reconciliation) publishes its STOPPED event.
    /// Returns whether it was Ready.
    pub(crate) fn sandbox_not_ready(&self, sandbox: &crate::sandbox::store::Sandbox) -> bool {
        let was_ready = sandbox.set_state(SandboxState::NotReady) == SandboxState::Ready;
        if was_ready {
            self.events.publish(Stopped, sandbox.id(), sandbox.id());
        }
        was_ready
    }

    /// Remove the sandbox and everything it owns. A missing id is not an error.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let sandbox = match self.sandboxes.get(id) {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = sandbox.op.lock().await;
        let containers = self.containers.in_sandbox(sandbox.id());
        if let Some(running) = containers
            .iter()
            .find(|c| c.status().state == crate::container::ContainerState::Running)
        {
            return Err(crate::error::Error::precondition(format!(
                "pod sandbox {} has running container {}: stop the sandbox first",
                sandbox.id(),
                running.id()
            )));
        }
        for c in containers {
            self.remove_container(c.id()).await?;
        }
        let meta = &sandbox.meta;
        let progress = Progress {
            dir: true,
            shm: true,
            netns: meta.netns_path.clone(),
            cni: meta.netns_path.is_some(),
            snapshot: true,
            container: true,
            task: true,
            pins: crate::runtime::sandbox_run::pin_paths(meta),
        };
        self.teardown_sandbox(meta, &progress).await?;
        self.sandboxes.remove(&meta.id);
        self.exits.forget(&meta.id);
        self.events.publish(Deleted, &meta.id, &meta.id);
        tracing::info!(sandbox = %meta.id, "pod sandbox removed");
        Ok(())
    }
}
