//! What containerd 1.6's CRI plugin (`io.containerd.grpc.v1.cri`) keeps
//! about its pods and containers, as typed serde structs, and where it
//! keeps it. Read-only: the formats are containerd's
//! (`pkg/cri/store/{sandbox,container}`, `pkg/cri/server/helpers.go`,
//! `pkg/cri/io`) and libcni's (`libcni/api.go`), checked against
//! containerd 1.6.20's source. 1.7 uses the same extension names
//! (`pkg/cri/sbserver`); 2.x keeps sandbox metadata under another key
//! (`internal/cri/server/podsandbox`) and is not read here.
//!
//! - Label `io.cri-containerd.kind` = `sandbox` | `container` on each
//!   containerd container record.
//! - Extension `io.cri-containerd.sandbox.metadata` /
//!   `io.cri-containerd.container.metadata`: Go's JSON of a versioned
//!   struct, `{"Version":"v1","Metadata":{…}}`, field names as in Go, the
//!   CRI configs inside with the proto field names (gogo's JSON tags).
//! - `<containerd root>/io.containerd.grpc.v1.cri/containers/<id>/status`:
//!   `{"Version":"v1","Pid":…,"CreatedAt":…,"StartedAt":…,"FinishedAt":…,
//!   "ExitCode":…,"Reason":…,"Message":…,"Resources":…}` (nanoseconds).
//! - `<containerd root|state>/io.containerd.grpc.v1.cri/sandboxes/<id>/`:
//!   hostname, hosts, resolv.conf (root); `shm`, a tmpfs (state).
//! - `<containerd state>/io.containerd.grpc.v1.cri/containers/<id>/io/<n>/
//!   <id>-stdout|-stderr`: the FIFOs of the task's output (the task record
//!   names them); the plugin read them inside containerd.
//! - `/var/run/netns/cni-<uuid>`: the pod's pinned netns.
//! - `/var/lib/cni/results/<network>-<sandbox id>-<ifname>`: libcni's cache
//!   of the network config list (base64) and ADD result, one per network
//!   (the pod network on `eth0`, `cni-loopback` on `lo`).

use crate::cri::{ContainerConfig, ContainerResources, PodSandboxConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const KIND_LABEL: &str = "io.cri-containerd.kind";
pub const SANDBOX_METADATA: &str = "io.cri-containerd.sandbox.metadata";
pub const CONTAINER_METADATA: &str = "io.cri-containerd.container.metadata";
/// The plugin's id as Introspection lists it (type `io.containerd.grpc.v1`).
pub const PLUGIN_TYPE: &str = "io.containerd.grpc.v1";
pub const PLUGIN_ID: &str = "cri";
/// Its directory under containerd's root and state.
pub const PLUGIN_DIR: &str = "io.containerd.grpc.v1.cri";
/// libcni's default cache directory.
pub const LIBCNI_CACHE_DIR: &str = "/var/lib/cni";
/// The only metadata and status version containerd 1.6–2.x write.
const VERSION: &str = "v1";

#[derive(Debug, Deserialize)]
struct Versioned<T> {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Metadata")]
    metadata: T,
}

/// Metadata in the plugin's versioned envelope (`{"Version":"v1","Metadata":…}`).
fn decode_versioned<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, String> {
    let v: Versioned<T> = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if v.version == VERSION {
        Ok(v.metadata)
    } else {
        Err(format!("unsupported metadata version {:?}", v.version))
    }
}

/// `pkg/cri/store/sandbox.Metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SandboxMetadata {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub config: Option<PodSandboxConfig>,
    #[serde(rename = "NetNSPath", default)]
    pub netns_path: String,
    #[serde(rename = "IP", default)]
    pub ip: String,
    #[serde(rename = "AdditionalIPs", default)]
    pub additional_ips: Option<Vec<String>>,
    #[serde(default)]
    pub runtime_handler: String,
    /// go-cni's result (interfaces, DNS, routes): kept as read.
    #[serde(rename = "CNIResult", default)]
    pub cni_result: Option<serde_json::Value>,
}

impl SandboxMetadata {
    pub fn decode(json: &[u8]) -> Result<Self, String> {
        decode_versioned(json)
    }
}

/// `pkg/cri/store/container.Metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerMetadata {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub image_ref: String,
    #[serde(default)]
    pub log_path: String,
    #[serde(default)]
    pub stop_signal: String,
}

impl ContainerMetadata {
    pub fn decode(json: &[u8]) -> Result<Self, String> {
        decode_versioned(json)
    }
}

/// `pkg/cri/store/container.Status` as checkpointed (its `Version` sits
/// beside the fields, not around them).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    pub version: String,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub started_at: i64,
    #[serde(default)]
    pub finished_at: i64,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub resources: Option<ContainerResources>,
}

impl ContainerStatus {
    pub fn decode(json: &[u8]) -> Result<Self, String> {
        let s: Self = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if s.version != VERSION {
            return Err(format!("unsupported status version {:?}", s.version));
        }
        Ok(s)
    }

    /// As the plugin derives it: finished, else started, else created.
    pub fn started(&self) -> bool {
        self.started_at != 0
    }
    pub fn finished(&self) -> bool {
        self.finished_at != 0
    }
}

/// One libcni cache file (`cachedInfo`, kind `cniCacheV1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LibcniCache {
    pub kind: String,
    pub container_id: String,
    /// The network config list, as the plugins got it (base64 in the file).
    #[serde(deserialize_with = "base64_bytes")]
    pub config: Vec<u8>,
    pub if_name: String,
    pub network_name: String,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
}

fn base64_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    use base64::Engine;
    let s = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(serde::de::Error::custom)
}

impl LibcniCache {
    pub fn decode(json: &[u8]) -> Result<Self, String> {
        let c: Self = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if c.kind != "cniCacheV1" {
            return Err(format!("unsupported libcni cache kind {:?}", c.kind));
        }
        Ok(c)
    }

    /// The config list as JSON.
    pub fn config_list(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.config).map_err(|e| e.to_string())
    }
}

/// The plugin's directories under containerd's root and state.
#[derive(Debug, Clone)]
pub struct PluginDirs {
    pub root: PathBuf,
    pub state: PathBuf,
}

impl PluginDirs {
    pub fn new(containerd_root: &Path, containerd_state: &Path) -> Self {
        PluginDirs {
            root: containerd_root.join(PLUGIN_DIR),
            state: containerd_state.join(PLUGIN_DIR),
        }
    }
    pub fn sandbox_root(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }
    pub fn sandbox_state(&self, id: &str) -> PathBuf {
        self.state.join("sandboxes").join(id)
    }
    pub fn container_root(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
    pub fn container_state(&self, id: &str) -> PathBuf {
        self.state.join("containers").join(id)
    }
    pub fn status_file(&self, id: &str) -> PathBuf {
        self.container_root(id).join("status")
    }
}

/// libcni's cache files of sandbox `id` in `cache_dir/results`, one per
/// network it was attached to (`<network>-<id>-<ifname>`).
pub fn libcni_cache_files(cache_dir: &Path, id: &str) -> Vec<PathBuf> {
    let needle = format!("-{id}-");
    std::fs::read_dir(cache_dir.join("results"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&needle))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped as containerd 1.6.20 writes them (Go's encoding/json of the
    // versioned structs; gogo's JSON tags inside the CRI configs).
    const SANDBOX: &str = r#"{"Version":"v1","Metadata":{"ID":"aa11","Name":"web_default_uid1_0",
      "Config":{"metadata":{"name":"web","uid":"uid1","namespace":"default"},"hostname":"web",
        "log_directory":"/var/log/pods/default_web_uid1","labels":{"app":"web"},
        "linux":{"security_context":{"namespace_options":{"pid":1}}}},
      "NetNSPath":"/var/run/netns/cni-1b2c","IP":"10.1.0.5","AdditionalIPs":null,
      "RuntimeHandler":"","CNIResult":{"Interfaces":{"eth0":{"IPConfigs":[{"IP":"10.1.0.5"}]}}},
      "ProcessLabel":""}}"#;

    const CONTAINER: &str = r#"{"Version":"v1","Metadata":{"ID":"bb22","Name":"app_web_default_uid1_0",
      "SandboxID":"aa11","Config":{"metadata":{"name":"app","attempt":2},
        "image":{"image":"reg/busybox:latest"},"command":["sh"],"envs":[{"key":"A","value":"1"}],
        "log_path":"app/2.log","linux":{"resources":{"cpu_shares":2,"memory_limit_in_bytes":1048576}}},
      "ImageRef":"sha256:abcd","LogPath":"/var/log/pods/default_web_uid1/app/2.log",
      "StopSignal":"SIGQUIT","ProcessLabel":""}}"#;

    #[test]
    fn sandbox_metadata_reads_go_json() {
        let m = SandboxMetadata::decode(SANDBOX.as_bytes()).unwrap();
        assert_eq!(m.id, "aa11");
        assert_eq!(m.netns_path, "/var/run/netns/cni-1b2c");
        assert_eq!(m.ip, "10.1.0.5");
        assert_eq!(m.additional_ips, None);
        let c = m.config.unwrap();
        assert_eq!(c.metadata.unwrap().uid, "uid1");
        assert_eq!(c.log_directory, "/var/log/pods/default_web_uid1");
        let ns = c.linux.unwrap().security_context.unwrap().namespace_options;
        assert_eq!(ns.unwrap().pid, 1);
    }

    #[test]
    fn container_metadata_reads_go_json() {
        let m = ContainerMetadata::decode(CONTAINER.as_bytes()).unwrap();
        assert_eq!((m.id.as_str(), m.sandbox_id.as_str()), ("bb22", "aa11"));
        assert_eq!(m.stop_signal, "SIGQUIT");
        let c = m.config.unwrap();
        assert_eq!(c.metadata.unwrap().attempt, 2);
        assert_eq!(c.envs[0].value_str(), "1");
        assert_eq!(
            c.linux.unwrap().resources.unwrap().memory_limit_in_bytes,
            1048576
        );
    }

    #[test]
    fn other_versions_are_refused() {
        let v2 = SANDBOX.replacen("\"v1\"", "\"v2\"", 1);
        assert!(SandboxMetadata::decode(v2.as_bytes()).is_err());
        assert!(ContainerStatus::decode(br#"{"Version":"v0","Pid":1}"#).is_err());
    }

    #[test]
    fn status_file_states() {
        let s = ContainerStatus::decode(
            br#"{"Version":"v1","Pid":42,"CreatedAt":1,"StartedAt":2,"FinishedAt":0,"ExitCode":0,"Reason":"","Message":"","Resources":{"linux":{"cpu_period":100000}}}"#,
        )
        .unwrap();
        assert!(s.started() && !s.finished());
        assert_eq!(s.resources.unwrap().linux.unwrap().cpu_period, 100000);
    }

    #[test]
    fn libcni_cache_decodes_its_base64_config() {
        use base64::Engine;
        let list = r#"{"cniVersion":"1.0.0","name":"net1","plugins":[{"type":"bridge"}]}"#;
        let file = serde_json::json!({
            "kind": "cniCacheV1", "containerId": "aa11",
            "config": base64::engine::general_purpose::STANDARD.encode(list),
            "ifName": "eth0", "networkName": "net1",
            "result": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24"}]}
        });
        let c = LibcniCache::decode(file.to_string().as_bytes()).unwrap();
        assert_eq!(c.config_list().unwrap()["name"], "net1");
        assert_eq!(c.if_name, "eth0");
    }
}
