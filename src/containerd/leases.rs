//! containerd `Leases` service: protects content and snapshots from GC while
//! an operation (a pull, an unpack) is under way.

use super::{api, Containerd};
use crate::error::{Error, Result};
use api::leases_client::LeasesClient;
use std::collections::HashMap;

impl Containerd {
    fn leases(&self) -> LeasesClient<super::Svc> {
        LeasesClient::new(self.svc())
    }

    /// Create a lease that containerd expires by itself after `expire_secs`
    /// (so a crashed crid leaks nothing for long).
    pub async fn create_lease(&self, id: &str, expire_secs: u64) -> Result<()> {
        let expire = chrono::Utc::now() + chrono::Duration::seconds(expire_secs as i64);
        let mut labels = HashMap::new();
        labels.insert(
            "containerd.io/gc.expire".to_string(),
            expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        labels.insert(
            super::OWNER_LABEL.to_string(),
            super::OWNER_VALUE.to_string(),
        );
        self.leases()
            .create(api::CreateRequest {
                id: id.into(),
                labels,
            })
            .await
            .map_err(|s| Error::containerd("Leases.Create", s))?;
        Ok(())
    }

    pub async fn delete_lease(&self, id: &str) -> Result<()> {
        self.delete_lease_with(id, false).await
    }

    /// Delete a lease and wait for containerd's GC to collect what only it
    /// held (after a failed pull or import: nothing of it should stay).
    pub async fn delete_lease_and_collect(&self, id: &str) -> Result<()> {
        self.delete_lease_with(id, true).await
    }

    async fn delete_lease_with(&self, id: &str, sync: bool) -> Result<()> {
        match self
            .leases()
            .delete(api::DeleteRequest {
                id: id.into(),
                sync,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Leases.Delete", s)),
        }
    }

    pub async fn list_leases(&self, filters: Vec<String>) -> Result<Vec<api::Lease>> {
        let resp = self
            .leases()
            .list(api::ListRequest { filters })
            .await
            .map_err(|s| Error::containerd("Leases.List", s))?;
        Ok(resp.into_inner().leases)
    }

    /// Put an existing snapshot under this client's lease (no-op without
    /// one), so the GC keeps it while the leased work relies on it: a
    /// snapshot found by `Stat` is not leased by that.
    pub async fn lease_snapshot(&self, key: &str) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        self.leases()
            .add_resource(api::AddResourceRequest {
                id: lease.clone(),
                resource: Some(api::Resource {
                    id: key.into(),
                    r#type: format!("snapshots/{}", self.snapshotter),
                }),
            })
            .await
            .map_err(|s| Error::containerd("Leases.AddResource", s))?;
        Ok(())
    }
}
