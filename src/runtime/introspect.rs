//! What crid tells kubelet about itself beyond conditions: the cgroup driver
//! (`RuntimeConfig`), the pod CIDR kubelet hands down (`UpdateRuntimeConfig`),
//! the `verbose` info of `Status`, and container checkpointing's
//! prerequisites. Reads configuration and asks containerd; changes nothing
//! but the CNI pod CIDR.

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

impl Runtime {
    /// The cgroup driver crid configures containers with (validated at load).
    pub fn cgroup_driver(&self) -> CgroupDriver {
        match self.config.cgroup_driver.as_str() {
            "systemd" => CgroupDriver::Systemd,
            _ => CgroupDriver::Cgroupfs,
        }
    }

    /// kubelet's `UpdateRuntimeConfig`: the node's pod CIDR, for CNI configs
    /// that ask for it. An empty CIDR clears it.
    pub fn update_pod_cidr(&self, cidr: &str) -> Result<()> {
        if !cidr.is_empty() && !valid_cidr(cidr) {
            return Err(Error::invalid(format!("pod CIDR {cidr:?} is not a CIDR")));
        }
        tracing::info!(cidr, "pod CIDR updated");
        self.cni.set_pod_cidr(cidr);
        Ok(())
    }

    /// `Status` verbose info: each value is a JSON document.
    pub async fn status_info(&self) -> HashMap<String, String> {
        // The effective config, plus `stateDir` as containerd's CRI names
        // its state dir: critest probes idmapped mount support at its
        // parent (crid's pins, FIFOs and sandbox mounts live there).
        let mut config = serde_json::to_value(&self.config).unwrap_or_default();
        if let Some(map) = config.as_object_mut() {
            map.insert("stateDir".into(), json!(self.config.state));
        }
        let config = config.to_string();
        let conf_dir = &self.config.cni.conf_dir;
        let cni = match (
            crate::network::cni::network_ready(conf_dir),
            self.cni.status(),
        ) {
            (Ok(file), Ok(())) => json!({
                "ready": true,
                "confDir": conf_dir,
                "configFile": file,
                "podCidr": self.cni.pod_cidr(),
            }),
            (file, status) => json!({
                "ready": false,
                "confDir": conf_dir,
                "configFile": file.ok(),
                "reason": status.err().unwrap_or_default(),
                "podCidr": self.cni.pod_cidr(),
            }),
        };
        let containerd = match self.containerd.version().await {
            Ok((version, revision)) => json!({
                "address": self.containerd.address(),
                "version": version,
                "revision": revision,
            }),
            Err(e) => json!({
                "address": self.containerd.address(),
                "error": e.to_string(),
            }),
        };
        HashMap::from([
            ("config".to_string(), config),
            ("cni".to_string(), cni.to_string()),
            ("containerd".to_string(), containerd.to_string()),
        ])
    }

    /// `CheckpointContainer`: needs CRIU, which runc calls to dump a task.
    /// crid refuses clearly when it is missing and does not implement the
    /// checkpoint archive yet otherwise.
    pub fn checkpoint_container(&self, id: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        if find_in_path("criu").is_none() {
            return Err(Error::precondition(format!(
                "cannot checkpoint container {}: CRIU (criu) is not installed on this node",
                c.id()
            )));
        }
        Err(Error::Unimplemented(format!(
            "cannot checkpoint container {}: CRIU is installed, but crid does not write checkpoint archives yet",
            c.id()
        )))
    }
}

fn valid_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    match (ip.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(l)) => l <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(l)) => l <= 128,
        _ => false,
    }
}

fn find_in_path(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked() {
        assert!(valid_cidr("10.244.1.0/24"));
        assert!(valid_cidr("fd00::/64"));
        assert!(!valid_cidr("10.244.1.0"));
        assert!(!valid_cidr("10.244.1.0/33"));
        assert!(!valid_cidr("bogus/8"));
    }
}
