//! `UpdateContainerResources` and `ReopenContainerLog`.

use crate::container::store::ContainerState;
use crate::cri::LinuxContainerResources;
use crate::error::{Error, Result};
use crate::runtime::Runtime;

impl Runtime {
    /// Apply new resources to a running container's task; remembered in its
    /// status either way, so ContainerStatus reflects them.
    pub async fn update_container_resources(
        &self,
        id: &str,
        resources: LinuxContainerResources,
    ) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        crate::cri::validate::resources("linux", &resources)?;
        crate::container::spec::check_node_applies(
            self.config.missing_cgroup_controllers,
            "linux",
            Some(&resources),
        )?;
        if c.status().state == ContainerState::Running {
            let mut oci = crate::container::spec::resources_to_oci(&resources);
            crate::container::spec::fit_to_node(
                &mut oci,
                crate::util::platform::cgroups::Cgroups::host(),
            );
            let json = serde_json::to_vec(&oci).map_err(|e| Error::internal(e.to_string()))?;
            self.containerd.update_task(c.id(), json).await?;
        }
        c.update_status(|s| s.resources = Some(resources))?;
        Ok(())
    }

    /// kubelet renamed the log file: have the container's logger open a new
    /// one at the same path. Only while the container runs.
    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        if c.status().state != ContainerState::Running {
            return Err(Error::precondition(format!(
                "container {} is not running",
                c.id()
            )));
        }
        let socket = self.container_state_dir(c.id()).join("logger.sock");
        tokio::task::spawn_blocking(move || crate::logger::request_reopen(&socket))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::internal(format!("reopen log of {id}: {e}")))
    }
}
