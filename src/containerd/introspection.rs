//! containerd `Introspection` service: what plugins are loaded and where
//! they keep their data (the snapshotter root for ImageFsInfo), and whether
//! one failed to start (for `crid check`).

use super::{api, Containerd};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// One plugin containerd registered.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// `io.containerd.snapshotter.v1`, `io.containerd.grpc.v1`...
    pub kind: String,
    pub id: String,
    pub exports: HashMap<String, String>,
    /// Why it failed to initialise; such a plugin cannot be used.
    pub init_error: Option<String>,
}

impl Containerd {
    /// The plugins matching containerd filters (`type==…,id==…`; several
    /// filters are alternatives). Disabled plugins are never listed.
    pub async fn plugins(&self, filters: Vec<String>) -> Result<Vec<PluginInfo>> {
        let mut c = api::introspection_client::IntrospectionClient::new(self.svc());
        let resp = c
            .plugins(api::PluginsRequest { filters })
            .await
            .map_err(|s| Error::containerd("Introspection.Plugins", s))?
            .into_inner();
        Ok(resp
            .plugins
            .into_iter()
            .map(|p| PluginInfo {
                kind: p.r#type,
                id: p.id,
                exports: p.exports,
                init_error: p.init_err.map(|s| s.message),
            })
            .collect())
    }

    /// The `root` directory exported by the configured snapshotter plugin.
    pub async fn snapshotter_root(&self) -> Result<Option<String>> {
        let filter = format!(
            "type==io.containerd.snapshotter.v1,id=={}",
            self.snapshotter
        );
        Ok(self
            .plugins(vec![filter])
            .await?
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
        let listed = self.plugins(vec![format!("type=={kind},id=={id}")]).await?;
        Ok(match listed.into_iter().next() {
            None => PluginState::Absent,
            Some(p) => match p.init_error {
                Some(e) => PluginState::Failed(e),
                None => PluginState::Loaded,
            },
        })
    }
}
