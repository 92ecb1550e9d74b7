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

/// Whether containerd loaded a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginState {
    /// Not listed: disabled in containerd's config, or not built in.
    Absent,
    Loaded,
    /// Listed with an init error (it is not serving).
    Failed(String),
}

impl Containerd {
    /// The state of plugin `kind`/`id` (e.g. `io.containerd.grpc.v1`/`cri`).
    pub async fn plugin_state(&self, kind: &str, id: &str) -> Result<PluginState> {
        let mut c = api::introspection_client::IntrospectionClient::new(self.svc());
        let resp = c
            .plugins(api::PluginsRequest {
                filters: vec![format!("type=={kind},id=={id}")],
            })
            .await
            .map_err(|s| Error::containerd("Introspection.Plugins", s))?
            .into_inner();
        Ok(match resp.plugins.into_iter().next() {
            None => PluginState::Absent,
            Some(p) => match p.init_err {
                Some(e) => PluginState::Failed(e.message),
                None => PluginState::Loaded,
            },
        })
    }
}
