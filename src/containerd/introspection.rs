//! containerd `Introspection` service: what plugins are loaded and where
//! they keep their data (the snapshotter root for ImageFsInfo).

use super::{api, Containerd};
use crate::error::{Error, Result};

impl Containerd {
    /// The `root` directory exported by the configured snapshotter plugin.
    pub async fn snapshotter_root(&self) -> Result<Option<String>> {
        let mut c = api::introspection_client::IntrospectionClient::new(self.svc());
        let resp = c
            .plugins(api::PluginsRequest {
                filters: vec![format!(
                    "type==io.containerd.snapshotter.v1,id=={}",
                    self.snapshotter
                )],
            })
            .await
            .map_err(|s| Error::containerd("Introspection.Plugins", s))?
            .into_inner();
        Ok(resp
            .plugins
            .into_iter()
            .find_map(|p| p.exports.get("root").cloned()))
    }
}
