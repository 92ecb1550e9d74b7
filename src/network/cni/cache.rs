//! The on-disk CNI cache: per sandbox id, the exact network config list used
//! for ADD and (once ADD succeeded) its result, at `<dir>/<id>.json`, written
//! atomically. DEL and CHECK use it so they work after restarts and config
//! changes. Owns only files named `<id>.json` (and temp files) in its dir.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheEntry {
    pub kind: String,
    pub container_id: String,
    pub if_name: String,
    /// The network config list, as passed to the plugins.
    pub config: Value,
    /// The final ADD result; `None` while ADD has not completed.
    #[serde(default)]
    pub result: Option<Value>,
}

pub const KIND: &str = "crid/cni-cache/v1";

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Self {
        Cache { dir }
    }

    pub fn path(&self, id: &str) -> Result<PathBuf> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(Error::invalid(format!("invalid sandbox id {id:?}")));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// `Ok(None)` when there is no entry; an unreadable entry is an error.
    pub fn read(&self, id: &str) -> Result<Option<CacheEntry>> {
        let path = self.path(id)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("corrupt CNI cache {}: {e}", path.display())))
    }

    /// Write atomically: DEL needs this entry to free the pod's IP after a
    /// crid restart. Not fsync'ed, like libcni's cache: host-local's own
    /// allocation files are not either, so an fsync here would not make a
    /// power loss any cleaner, and it cost milliseconds per pod.
    pub fn write(&self, entry: &CacheEntry) -> Result<()> {
        let path = self.path(&entry.container_id)?;
        crate::util::persist::replace_json(&path, entry)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let path = self.path(id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", path.display()), e)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_removes() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path().join("cni"));
        assert!(cache.read("sb1").unwrap().is_none());
        let entry = CacheEntry {
            kind: KIND.into(),
            container_id: "sb1".into(),
            if_name: "eth0".into(),
            config: json!({"name":"n","plugins":[{"type":"bridge"}]}),
            result: Some(json!({"ips":[{"address":"10.0.0.2/24"}]})),
        };
        cache.write(&entry).unwrap();
        assert_eq!(cache.read("sb1").unwrap().unwrap(), entry);
        // Only the entry itself is left, no temp files.
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("sb1.json")]);
        cache.remove("sb1").unwrap();
        cache.remove("sb1").unwrap();
        assert!(cache.read("sb1").unwrap().is_none());
    }

    #[test]
    fn rejects_ids_that_escape_the_dir() {
        let cache = Cache::new("/nonexistent".into());
        assert!(cache.path("../x").is_err());
        assert!(cache.path("").is_err());
    }
}
