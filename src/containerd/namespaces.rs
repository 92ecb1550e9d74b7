//! containerd `Namespaces` service, and clients scoped to another namespace.

use super::{api, Containerd};
use crate::error::{Error, Result};

impl Containerd {
    /// Every namespace containerd knows.
    pub async fn list_namespaces(&self) -> Result<Vec<String>> {
        let mut c = api::namespaces_client::NamespacesClient::new(self.svc());
        let resp = c
            .list(api::ListNamespacesRequest {
                filter: String::new(),
            })
            .await
            .map_err(|s| Error::containerd("Namespaces.List", s))?;
        Ok(resp
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect())
    }

    /// The same client (same channel), making its calls in `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Result<Self> {
        let mut c = self.clone();
        c.scope.namespace = namespace
            .parse()
            .map_err(|_| Error::invalid(format!("containerd namespace {namespace:?}")))?;
        c.namespace = namespace.to_string();
        Ok(c)
    }
}
