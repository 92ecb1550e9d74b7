//! The CNI executor: finds the network config, runs plugins (ADD/DEL/CHECK),
//! caches results per sandbox on disk.

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
