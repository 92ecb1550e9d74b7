//! The CNI executor: finds the network config, runs plugins (ADD/DEL/CHECK),
//! caches results per sandbox on disk.

use crate::config::CniConfig;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Readiness of the pod network: `Err(reason)` while no usable config exists.
pub fn network_ready(conf_dir: &Path) -> Result<PathBuf, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf_dir)
        .map_err(|e| format!("cannot read CNI config dir {}: {e}", conf_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conf" | "conflist" | "json")
            )
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .next()
        .ok_or_else(|| format!("no network config found in {}", conf_dir.display()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct PortMapping {
    pub host_port: i32,
    pub container_port: i32,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub host_ip: String,
}

/// What the CNI plugins need to know about a pod.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    /// Sandbox id (`CNI_CONTAINERID`).
    pub id: String,
    pub netns: PathBuf,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub port_mappings: Vec<PortMapping>,
    /// Pod annotations (bandwidth: `kubernetes.io/ingress-bandwidth`, ...).
    pub annotations: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkResult {
    /// Primary pod IP (first IPv4, else first address).
    pub ip: String,
    pub additional_ips: Vec<String>,
}

pub struct Cni {
    config: CniConfig,
    cache_dir: PathBuf,
}

impl Cni {
    /// `cache_dir` holds per-sandbox config + result, for DEL after restarts.
    pub fn new(config: &CniConfig, cache_dir: PathBuf) -> Self {
        Cni {
            config: config.clone(),
            cache_dir,
        }
    }

    /// `Err(reason)` while no usable network config exists.
    pub fn status(&self) -> std::result::Result<(), String> {
        network_ready(&self.config.conf_dir).map(|_| ())
    }

    /// CNI ADD for the pod; on failure, what was added is deleted again.
    pub async fn setup(&self, pod: &PodNetwork) -> Result<NetworkResult> {
        let _ = (pod, &self.cache_dir);
        Err(Error::Unimplemented("CNI".into()))
    }

    /// CNI DEL with the cached config; idempotent.
    pub async fn teardown(&self, pod: &PodNetwork) -> Result<()> {
        let _ = pod;
        Err(Error::Unimplemented("CNI".into()))
    }

    /// The cached result of the last ADD for sandbox `id`.
    pub fn cached_result(&self, id: &str) -> Option<NetworkResult> {
        let _ = id;
        None
    }
}
