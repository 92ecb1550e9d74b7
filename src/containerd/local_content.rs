//! Writing blobs straight into containerd's local content store.
//!
//! Streaming a layer over `Content.Write` makes containerd receive it over
//! gRPC, hash it and write it: most of a pull's containerd CPU. containerd's
//! CRI plugin writes into the same store in-process. crid can do the same
//! with the store's own rules, and still registers every blob through the
//! API:
//!
//! - `Introspection.Plugins` says where the store is (the content plugin's
//!   `root` export) and whether content is shared between namespaces (the
//!   metadata plugin's `policy` export, `shared` by default);
//! - crid downloads the blob into a staging file beside the store, hashes it
//!   and checks size and digest, syncs it and renames it to
//!   `blobs/sha256/<hex>` read-only, as containerd's own commit does;
//! - with the shared policy, `Content.Write` of a blob that is in the store
//!   but not yet in the namespace answers that every byte is there, and its
//!   commit records the blob in the namespace (labels and lease included)
//!   without any data (`Containerd::commit_present_blob`).
//!
//! If containerd does not see the file (another mount namespace, an
//! `isolated` policy set later), the commit finds nothing and the caller
//! streams the blob instead.

use super::{api, Containerd};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// containerd's local content store as crid sees it.
#[derive(Debug, Clone)]
pub struct LocalContentStore {
    /// `<containerd root>/io.containerd.content.v1.content`.
    root: PathBuf,
    /// Where downloads are staged before the rename: beside `blobs`, so the
    /// rename stays on one filesystem, and per containerd namespace, so two
    /// crids on one containerd never clear each other's files.
    staging: PathBuf,
}

impl Containerd {
    /// The local content store, when containerd has one whose blobs are
    /// shared between namespaces and crid can write to it; `None` otherwise.
    pub async fn local_content_store(&self) -> Result<Option<LocalContentStore>> {
        let mut c = api::introspection_client::IntrospectionClient::new(self.svc());
        let plugins = c
            .plugins(api::PluginsRequest {
                filters: vec![
                    "type==io.containerd.content.v1,id==content".into(),
                    "type==io.containerd.metadata.v1,id==bolt".into(),
                ],
            })
            .await
            .map_err(|s| Error::containerd("Introspection.Plugins", s))?
            .into_inner()
            .plugins;
        let export = |ty: &str, key: &str| {
            plugins
                .iter()
                .find(|p| p.r#type == ty && p.init_err.is_none())
                .and_then(|p| p.exports.get(key).cloned())
        };
        let policy = export("io.containerd.metadata.v1", "policy");
        let Some(root) = export("io.containerd.content.v1", "root") else {
            tracing::info!("containerd has no local content store: layers are streamed to it");
            return Ok(None);
        };
        if policy.as_deref() != Some("shared") {
            tracing::info!(
                policy = policy.as_deref().unwrap_or("unknown"),
                "containerd's content is not shared between namespaces: layers are streamed to it"
            );
            return Ok(None);
        }
        // containerd refuses namespaces that are not path-safe; check anyway,
        // since the staging directory is named after it.
        let ns = self.namespace();
        let path_safe = !ns.is_empty()
            && !ns.starts_with('.')
            && ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !path_safe || !Path::new(&root).is_absolute() {
            return Ok(None);
        }
        let store = LocalContentStore::at(Path::new(&root), ns);
        match store.prepare() {
            Ok(()) => {
                tracing::info!(
                    root,
                    "pulls write layers straight into containerd's content store"
                );
                Ok(Some(store))
            }
            Err(e) => {
                tracing::info!(
                    root,
                    "cannot write to containerd's content store ({e}): layers are streamed to it"
                );
                Ok(None)
            }
        }
    }

    /// Record in this namespace (with `labels`, under the current lease) a
    /// blob that is already in containerd's store: a `Content.Write` with no
    /// data. `false` when containerd does not have all of it, in which case
    /// nothing was recorded.
    pub async fn commit_present_blob(
        &self,
        reference: &str,
        digest: &str,
        size: i64,
        labels: std::collections::HashMap<String, String>,
    ) -> Result<bool> {
        let Some(mut writer) = self.blob_writer(reference, size, digest).await? else {
            // The namespace has it already (a concurrent pull): leased.
            self.update_content_labels(digest, labels).await?;
            return Ok(true);
        };
        if writer.resumable() != size {
            writer.abort().await;
            return Ok(false);
        }
        writer.resume_at(size);
        writer.commit(size, digest, labels).await?;
        Ok(true)
    }
}

impl LocalContentStore {
    fn at(root: &Path, namespace: &str) -> Self {
        LocalContentStore {
            root: root.to_path_buf(),
            staging: root.join("crid-staging").join(namespace),
        }
    }

    /// Create the directories, and clear what a crid that died mid-pull left
    /// staged in this namespace.
    fn prepare(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join("blobs/sha256"))?;
        match std::fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&self.staging)
    }

    /// Where containerd keeps blob `digest` (`sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::invalid(format!("digest {digest:?} is not sha256")))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// A staging file for blob `digest`, of which `size` bytes are expected.
    pub fn stage(&self, digest: &str, size: i64) -> Result<StagedBlob> {
        let target = self.blob_path(digest)?;
        let name = format!(
            "{}.{:016x}",
            digest.trim_start_matches("sha256:"),
            rand::random::<u64>()
        );
        let path = self.staging.join(name);
        let file = std::fs::File::create(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(StagedBlob {
            path,
            target,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            expected: digest.to_string(),
            size,
        })
    }
}

/// A blob being downloaded into the staging directory. Blocking I/O: used
/// from a blocking thread. Dropped before `publish`, it removes its file.
pub struct StagedBlob {
    path: PathBuf,
    target: PathBuf,
    file: Option<std::fs::File>,
    hasher: Sha256,
    written: i64,
    expected: String,
    size: i64,
}

impl StagedBlob {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.written += data.len() as i64;
        if self.written > self.size {
            return Err(Error::internal(format!(
                "layer {} corrupt: more than the {} bytes of the manifest",
                self.expected, self.size
            )));
        }
        self.hasher.update(data);
        let file = self.file.as_mut().expect("file open until publish");
        file.write_all(data)
            .map_err(|e| Error::io(format!("write {}", self.path.display()), e))
    }

    /// Check size and digest, then make the blob containerd's: synced,
    /// read-only, renamed into `blobs/sha256`. A failed check is an error;
    /// a failed rename (`blobs` on another filesystem than the staging
    /// directory, say) is `Published::NotMoved`, and the staged file goes.
    pub fn publish(mut self) -> Result<Published> {
        if self.written != self.size {
            return Err(Error::Unavailable(format!(
                "download {}: ended after {} of {} bytes",
                self.expected, self.written, self.size
            )));
        }
        let got = format!("sha256:{:x}", std::mem::take(&mut self.hasher).finalize());
        if got != self.expected {
            return Err(Error::internal(format!(
                "layer {} corrupt: the downloaded bytes hash to {got}",
                self.expected
            )));
        }
        let file = self.file.take().expect("file open until publish");
        let io = |what: &str, e| Error::io(format!("{what} {}", self.path.display()), e);
        file.sync_all().map_err(|e| io("sync", e))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(|e| io("chmod", e))?;
        drop(file);
        match std::fs::rename(&self.path, &self.target) {
            Ok(()) => Ok(Published::At(self.target.clone())),
            Err(e) => {
                let _ = std::fs::remove_file(&self.path);
                Ok(Published::NotMoved(e))
            }
        }
    }
}

/// Where a verified blob went.
#[derive(Debug)]
pub enum Published {
    /// Into containerd's store, at this path.
    At(PathBuf),
    /// Nowhere: it could not be renamed into the store.
    NotMoved(std::io::Error),
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(data))
    }

    #[test]
    fn a_verified_blob_lands_read_only_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalContentStore::at(dir.path(), "ns");
        store.prepare().unwrap();
        let data = b"some layer bytes";
        let mut b = store.stage(&sha(data), data.len() as i64).unwrap();
        b.write(&data[..4]).unwrap();
        b.write(&data[4..]).unwrap();
        let Published::At(path) = b.publish().unwrap() else {
            panic!("not moved")
        };
        assert_eq!(path, store.blob_path(&sha(data)).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444);
        assert_eq!(std::fs::read_dir(&store.staging).unwrap().count(), 0);
    }

    #[test]
    fn wrong_bytes_or_sizes_never_reach_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalContentStore::at(dir.path(), "ns");
        store.prepare().unwrap();
        let data = b"expected";
        let digest = sha(data);
        // Same size, other bytes.
        let mut b = store.stage(&digest, 8).unwrap();
        b.write(b"EXPECTED").unwrap();
        assert!(b.publish().unwrap_err().to_string().contains("corrupt"));
        // Too short.
        let mut b = store.stage(&digest, 8).unwrap();
        b.write(b"exp").unwrap();
        assert!(matches!(b.publish(), Err(Error::Unavailable(_))));
        // Too long.
        let mut b = store.stage(&digest, 8).unwrap();
        assert!(b.write(b"expected!").is_err());
        drop(b);
        assert!(!store.blob_path(&digest).unwrap().exists());
        assert_eq!(std::fs::read_dir(&store.staging).unwrap().count(), 0);
        assert!(store.stage("sha512:00", 1).is_err());
    }

    #[test]
    fn a_blob_that_cannot_be_moved_into_the_store_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalContentStore::at(dir.path(), "ns");
        store.prepare().unwrap();
        // `blobs/sha256` replaced by a file: the rename fails.
        std::fs::remove_dir(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(dir.path().join("blobs/sha256"), b"").unwrap();
        let data = b"bytes";
        let mut b = store.stage(&sha(data), 5).unwrap();
        b.write(data).unwrap();
        assert!(matches!(b.publish().unwrap(), Published::NotMoved(_)));
        assert_eq!(std::fs::read_dir(&store.staging).unwrap().count(), 0);
    }

    #[test]
    fn prepare_clears_what_a_dead_crid_staged() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalContentStore::at(dir.path(), "ns");
        store.prepare().unwrap();
        std::fs::write(store.staging.join("leftover"), b"x").unwrap();
        let other = LocalContentStore::at(dir.path(), "other");
        other.prepare().unwrap();
        std::fs::write(other.staging.join("theirs"), b"x").unwrap();
        store.prepare().unwrap();
        assert_eq!(std::fs::read_dir(&store.staging).unwrap().count(), 0);
        assert!(other.staging.join("theirs").exists());
    }
}
