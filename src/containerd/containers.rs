//! containerd `Containers` service.

use super::{api, Containerd};
use crate::error::{Error, Result};
use api::containers_client::ContainersClient;
pub use api::Container;

impl Containerd {
    fn containers(&self) -> ContainersClient<super::Svc> {
        ContainersClient::new(self.svc())
    }

    pub async fn create_container(&self, container: Container) -> Result<Container> {
        let resp = self
            .containers()
            .create(api::CreateContainerRequest {
                container: Some(container),
            })
            .await
            .map_err(|s| Error::containerd("Containers.Create", s))?;
        resp.into_inner()
            .container
            .ok_or_else(|| Error::internal("Containers.Create returned no container"))
    }

    pub async fn get_container(&self, id: &str) -> Result<Container> {
        let resp = self
            .containers()
            .get(api::GetContainerRequest { id: id.into() })
            .await
            .map_err(|s| Error::containerd("Containers.Get", s))?;
        resp.into_inner()
            .container
            .ok_or_else(|| Error::internal("Containers.Get returned no container"))
    }

    /// Containers matching containerd filters, e.g. `labels."io.crid.owner"==crid`.
    pub async fn list_containers(&self, filters: Vec<String>) -> Result<Vec<Container>> {
        let resp = self
            .containers()
            .list(api::ListContainersRequest { filters })
            .await
            .map_err(|s| Error::containerd("Containers.List", s))?;
        Ok(resp.into_inner().containers)
    }

    /// Replace the labels and extensions named in `paths` (e.g. `labels.x`, `extensions.y`).
    pub async fn update_container(
        &self,
        container: Container,
        paths: Vec<String>,
    ) -> Result<Container> {
        let resp = self
            .containers()
            .update(api::UpdateContainerRequest {
                container: Some(container),
                update_mask: Some(prost_types::FieldMask { paths }),
            })
            .await
            .map_err(|s| Error::containerd("Containers.Update", s))?;
        resp.into_inner()
            .container
            .ok_or_else(|| Error::internal("Containers.Update returned no container"))
    }

    /// Delete a container record; a missing one is not an error.
    pub async fn delete_container(&self, id: &str) -> Result<()> {
        match self
            .containers()
            .delete(api::DeleteContainerRequest { id: id.into() })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Containers.Delete", s)),
        }
    }
}
