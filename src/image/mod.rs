//! Images: pull from registries into containerd's content store, unpack into
//! snapshots, register in containerd's image store; list, status, remove;
//! the locally built pause image. Knows nothing of gRPC.

use crate::config::Config;
use crate::containerd::Containerd;
use crate::error::{Error, Result};

/// Credentials for a pull, from the CRI `AuthConfig`.
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// base64 `user:password`.
    pub auth: String,
    pub identity_token: String,
    pub registry_token: String,
    pub server_address: String,
}

/// An image present in containerd, as crid sees it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// `sha256:<config digest>`: the CRI image id and `image_ref`.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Bytes of the compressed layers + config + manifest.
    pub size: u64,
    pub config: oci_spec::image::ImageConfiguration,
    /// Chain id of the top layer: the parent of a container's rootfs snapshot.
    pub chain_id: String,
    pub pinned: bool,
}

/// Usage of the snapshotter's directory.
#[derive(Debug, Clone, Default)]
pub struct FsUsage {
    pub mountpoint: String,
    pub used_bytes: u64,
    pub inodes_used: u64,
    pub timestamp_nanos: i64,
}

pub struct ImageService {
    #[allow(dead_code)]
    containerd: Containerd,
    sandbox_image: String,
}

impl ImageService {
    pub fn new(containerd: Containerd, config: &Config) -> Self {
        ImageService {
            containerd,
            sandbox_image: config.sandbox_image.clone(),
        }
    }

    pub fn sandbox_image(&self) -> &str {
        &self.sandbox_image
    }

    /// Pull `reference`; returns the image id.
    pub async fn pull(&self, _reference: &str, _auth: Option<&RegistryAuth>) -> Result<String> {
        Err(Error::Unimplemented("PullImage".into()))
    }

    pub async fn list(&self, _filter: Option<&str>) -> Result<Vec<ImageRecord>> {
        Err(Error::Unimplemented("ListImages".into()))
    }

    /// `None` when the image is not present.
    pub async fn status(&self, _reference: &str) -> Result<Option<ImageRecord>> {
        Err(Error::Unimplemented("ImageStatus".into()))
    }

    /// Remove by id, tag or digest; a missing image is not an error.
    pub async fn remove(&self, _reference: &str) -> Result<()> {
        Err(Error::Unimplemented("RemoveImage".into()))
    }

    pub async fn fs_info(&self) -> Result<FsUsage> {
        Err(Error::Unimplemented("ImageFsInfo".into()))
    }

    /// Make sure the sandbox image is present and unpacked: pull it, or build
    /// crid's own pause image locally when it cannot be pulled.
    pub async fn ensure_sandbox_image(&self) -> Result<ImageRecord> {
        Err(Error::Unimplemented("sandbox image".into()))
    }

    /// The image a container is created from (by id, tag or digest),
    /// unpacked; `NotFound` when absent.
    pub async fn resolve(&self, reference: &str) -> Result<ImageRecord> {
        Err(Error::not_found(format!("image {reference:?}")))
    }
}
