//! The CNI executor: finds the network config, runs plugins (ADD/DEL/CHECK),
//! caches config + result per sandbox on disk. Modelled on libcni: the
//! lexically first config file, name/cniVersion/prevResult/runtimeConfig
//! injected, DEL in reverse order, DEL from the cached config.
//! Owns `cache_dir`; knows nothing of containerd or gRPC.

pub mod cache;
pub mod config;
pub mod exec;
pub mod result;
#[cfg(test)]
mod tests;

use crate::config::CniConfig;
use crate::error::{Error, Result};
use cache::{Cache, CacheEntry};
use config::{at_least_040, plugin_stdin, plugin_type, NetworkConfigList, RuntimeConfig};
use exec::{find_plugin, Command, Invocation, PluginExec, ProcessExec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use result::IFNAME;

/// Readiness of the pod network: `Err(reason)` while no config file exists.
/// (`Cni::status` also validates it and looks for the plugin binaries.)
pub fn network_ready(conf_dir: &Path) -> Result<PathBuf, String> {
    config::first_config_file(conf_dir)
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
    cache: Cache,
    exec: Arc<dyn PluginExec>,
    pod_cidr: Mutex<Option<String>>,
}

impl Cni {
    /// `cache_dir` holds per-sandbox config + result, for DEL after restarts.
    pub fn new(config: &CniConfig, cache_dir: PathBuf) -> Self {
        let exec = ProcessExec {
            bin_dirs: config.bin_dirs.clone(),
            timeout: Duration::from_secs(config.plugin_timeout_secs.max(1)),
        };
        Self::with_exec(config, cache_dir, Arc::new(exec))
    }

    /// Like `new`, with another way of running plugins (tests record calls).
    pub fn with_exec(config: &CniConfig, cache_dir: PathBuf, exec: Arc<dyn PluginExec>) -> Self {
        Cni {
            config: config.clone(),
            cache: Cache::new(cache_dir),
            exec,
            pod_cidr: Mutex::new(None),
        }
    }

    /// `Err(reason)` while no usable network config exists: none, invalid,
    /// or naming a plugin binary that is not installed.
    pub fn status(&self) -> std::result::Result<(), String> {
        let list = self.load().map_err(|e| e.to_string())?;
        for p in &list.plugins {
            let ipam = p
                .get("ipam")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str);
            for t in std::iter::once(plugin_type(p)).chain(ipam) {
                find_plugin(&self.config.bin_dirs, t).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// kubelet's UpdateRuntimeConfig: substituted for `"subnet": "usePodCidr"`.
    pub fn set_pod_cidr(&self, cidr: &str) {
        let cidr = (!cidr.is_empty()).then(|| cidr.to_string());
        *self.pod_cidr.lock().unwrap_or_else(|e| e.into_inner()) = cidr;
    }

    /// The pod CIDR kubelet last set, if any.
    pub fn pod_cidr(&self) -> Option<String> {
        self.pod_cidr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current config (re-read on every call: cheap, never stale).
    fn load(&self) -> Result<NetworkConfigList> {
        let mut list = config::load_dir(&self.config.conf_dir)?;
        if let Some(cidr) = self
            .pod_cidr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
        {
            list.substitute_pod_cidr(cidr);
        }
        Ok(list)
    }

    /// CNI ADD for the pod; on failure, what was added is deleted again.
    pub async fn setup(&self, pod: &PodNetwork) -> Result<NetworkResult> {
        let list = self.load()?;
        let rt = runtime_config(pod)?;
        let mut entry = CacheEntry {
            kind: cache::KIND.into(),
            container_id: pod.id.clone(),
            if_name: IFNAME.into(),
            config: list.to_value(),
            result: None,
        };
        // Cache the config before ADD: a crash part-way still tears down.
        self.cache.write(&entry)?;
        let added = match self.add_list(&list, pod, &rt).await {
            Ok(r) => match result::network_result(&r) {
                None => Err(Error::internal("CNI result has no pod IP address")),
                Some(net) => {
                    entry.result = Some(r);
                    self.cache.write(&entry).map(|()| net)
                }
            }
            .map_err(|e| (e, usize::MAX)),
            Err(e) => Err(e),
        };
        match added {
            Ok(net) => {
                tracing::info!(id = %pod.id, ip = %net.ip, network = %list.name, "pod network set up");
                Ok(net)
            }
            Err((e, failed_at)) => {
                // Only plugins whose ADD succeeded must DEL cleanly; the
                // failed one and those after it are deleted best effort.
                match self.del_list(&list, pod, &rt, None, failed_at).await {
                    Ok(()) => self.cache.remove(&pod.id)?,
                    Err(del) => tracing::warn!(id = %pod.id, error = %del,
                        "rollback of failed CNI ADD failed; cache kept for teardown"),
                }
                Err(e.context(&format!(
                    "CNI ADD for sandbox {} (network {})",
                    pod.id, list.name
                )))
            }
        }
    }

    /// CNI DEL with the cached config (else the current one); idempotent.
    pub async fn teardown(&self, pod: &PodNetwork) -> Result<()> {
        let cached = match self.cache.read(&pod.id) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id = %pod.id, error = %e, "ignoring unreadable CNI cache");
                None
            }
        };
        let from_cache = cached
            .as_ref()
            .and_then(|c| config::from_value(&c.config).ok());
        let list = match from_cache {
            Some(l) => l,
            None => match self.load() {
                Ok(l) => l,
                // Nothing cached and no config: nothing crid could have set up.
                Err(e) if cached.is_none() => {
                    tracing::warn!(id = %pod.id, error = %e, "no CNI config for teardown");
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
        };
        let rt = runtime_config(pod).unwrap_or_default();
        let prev = cached.and_then(|c| c.result);
        // A network namespace that is gone, or was never pinned (a crash
        // between creating its file and mounting it), is passed as empty,
        // as containerd does for a closed netns: the plugins then release
        // what they hold outside it (addresses, host veth, port mappings).
        let unpinned;
        let pod = if crate::network::netns::is_pinned(&pod.netns) {
            pod
        } else {
            unpinned = PodNetwork {
                netns: PathBuf::new(),
                ..pod.clone()
            };
            &unpinned
        };
        self.del_list(&list, pod, &rt, prev.as_ref(), usize::MAX)
            .await
            .map_err(|e| e.context(&format!("CNI DEL for sandbox {}", pod.id)))?;
        self.cache.remove(&pod.id)
    }

    /// CNI CHECK (cniVersion >= 0.4.0) against the cached ADD result.
    pub async fn check(&self, pod: &PodNetwork) -> Result<()> {
        let entry = self
            .cache
            .read(&pod.id)?
            .ok_or_else(|| Error::not_found(format!("no CNI result cached for {}", pod.id)))?;
        let list = config::from_value(&entry.config).map_err(Error::internal)?;
        let prev = entry
            .result
            .ok_or_else(|| Error::precondition(format!("CNI ADD of {} not complete", pod.id)))?;
        if !at_least_040(&list.cni_version) || list.disable_check {
            return Ok(());
        }
        let rt = runtime_config(pod)?;
        for plugin in &list.plugins {
            let inv = self.invocation(Command::Check, &list, plugin, pod, Some(&prev), &rt)?;
            self.exec.exec(&inv).await?;
        }
        Ok(())
    }

    /// Record an ADD another runtime made for sandbox `id` (the config list
    /// the plugins got and their result, as libcni cached them), so that
    /// DEL and CHECK use them as for crid's own.
    pub fn record_add(
        &self,
        id: &str,
        if_name: &str,
        config: Value,
        result: Option<Value>,
    ) -> Result<()> {
        self.cache.write(&CacheEntry {
            kind: cache::KIND.into(),
            container_id: id.into(),
            if_name: if_name.into(),
            config,
            result,
        })
    }

    /// The cached result of the last ADD for sandbox `id`.
    pub fn cached_result(&self, id: &str) -> Option<NetworkResult> {
        let entry = self.cache.read(id).ok()??;
        result::network_result(entry.result.as_ref()?)
    }

    async fn add_list(
        &self,
        list: &NetworkConfigList,
        pod: &PodNetwork,
        rt: &RuntimeConfig,
    ) -> std::result::Result<Value, (Error, usize)> {
        let mut prev: Option<Value> = None;
        for (i, plugin) in list.plugins.iter().enumerate() {
            let inv = self
                .invocation(Command::Add, list, plugin, pod, prev.as_ref(), rt)
                .map_err(|e| (e, i))?;
            let out = self.exec.exec(&inv).await.map_err(|e| (e, i))?;
            let value: Value = serde_json::from_slice(&out).map_err(|e| {
                let msg = format!(
                    "plugin type={:?} printed an invalid result: {e}",
                    inv.plugin_type
                );
                (Error::internal(msg), i)
            })?;
            prev = Some(value);
        }
        prev.ok_or_else(|| (Error::internal("empty plugin list"), 0))
    }

    /// DEL every plugin in reverse order; all run, and the first error from
    /// a plugin before index `must_succeed_below` is returned.
    async fn del_list(
        &self,
        list: &NetworkConfigList,
        pod: &PodNetwork,
        rt: &RuntimeConfig,
        cached: Option<&Value>,
        must_succeed_below: usize,
    ) -> Result<()> {
        let prev = cached.filter(|_| at_least_040(&list.cni_version));
        let mut first_err = None;
        for (i, plugin) in list.plugins.iter().enumerate().rev() {
            let inv = self.invocation(Command::Del, list, plugin, pod, prev, rt)?;
            if let Err(e) = self.exec.exec(&inv).await {
                tracing::warn!(id = %pod.id, error = %e, "CNI DEL failed");
                if i < must_succeed_below {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn invocation(
        &self,
        command: Command,
        list: &NetworkConfigList,
        plugin: &serde_json::Map<String, Value>,
        pod: &PodNetwork,
        prev: Option<&Value>,
        rt: &RuntimeConfig,
    ) -> Result<Invocation> {
        let stdin = plugin_stdin(list, plugin, prev, rt);
        let cni_path = self
            .config
            .bin_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.id, pod.uid
        );
        Ok(Invocation {
            command,
            plugin_type: plugin_type(plugin).to_string(),
            env: vec![
                ("CNI_COMMAND".into(), command.as_str().into()),
                ("CNI_CONTAINERID".into(), pod.id.clone()),
                ("CNI_NETNS".into(), pod.netns.display().to_string()),
                ("CNI_IFNAME".into(), IFNAME.into()),
                ("CNI_ARGS".into(), args),
                ("CNI_PATH".into(), cni_path),
            ],
            stdin: serde_json::to_vec(&stdin).map_err(|e| Error::internal(e.to_string()))?,
        })
    }
}

/// `runtimeConfig` values crid can offer; plugins get those they declare.
pub fn runtime_config(pod: &PodNetwork) -> Result<RuntimeConfig> {
    let mut rt = RuntimeConfig::new();
    if !pod.port_mappings.is_empty() {
        let maps: Vec<Value> = pod
            .port_mappings
            .iter()
            .map(|m| {
                json!({
                    "hostPort": m.host_port,
                    "containerPort": m.container_port,
                    "protocol": m.protocol.to_lowercase(),
                    "hostIP": m.host_ip,
                })
            })
            .collect();
        rt.insert("portMappings".into(), Value::Array(maps));
    }
    let mut bw = serde_json::Map::new();
    for (dir, key) in [
        ("ingress", "kubernetes.io/ingress-bandwidth"),
        ("egress", "kubernetes.io/egress-bandwidth"),
    ] {
        if let Some(q) = pod.annotations.get(key) {
            let rate = config::parse_quantity(q).map_err(|e| e.context(key))?;
            bw.insert(format!("{dir}Rate"), json!(rate));
            // As containerd: no burst limit beyond what the plugin accepts.
            bw.insert(format!("{dir}Burst"), json!(u32::MAX));
        }
    }
    if !bw.is_empty() {
        rt.insert("bandwidth".into(), Value::Object(bw));
    }
    Ok(rt)
}
