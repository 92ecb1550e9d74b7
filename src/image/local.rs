//! Images made on the node rather than pulled: crid's built-in pause image
//! and images carried over from dockerd (`crid migrate docker`). The caller
//! has written the layer blobs (uncompressed, under its lease); this module
//! writes the OCI manifest and the config with the labels a pull sets,
//! unpacks the layers and records the image under its names, as a pull does.

use super::manifest::{self, Desc, Manifest};
use super::{store, unpack};
use crate::containerd::{Containerd, Descriptor};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// An image whose layers are in the content store already.
pub struct LocalImage {
    /// The config blob exactly as it is to be stored: its digest is the image id.
    pub config: Vec<u8>,
    /// Uncompressed layers, bottom first: their digests are their diff ids.
    pub layers: Vec<Desc>,
}

impl LocalImage {
    /// `sha256:<config digest>`: the CRI image id.
    pub fn id(&self) -> String {
        manifest::sha256_digest(&self.config)
    }

    /// The OCI manifest: OCI because only its media types name an
    /// uncompressed layer (Docker schema2 has gzip layers only).
    pub fn manifest(&self) -> (Manifest, Vec<u8>) {
        let m = Manifest {
            config: Desc {
                media_type: manifest::OCI_CONFIG.into(),
                digest: self.id(),
                size: self.config.len() as i64,
                platform: None,
            },
            layers: self.layers.clone(),
        };
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": m.config,
            "layers": m.layers,
        }))
        .expect("serialise manifest");
        (m, bytes)
    }
}

/// An uncompressed layer's descriptor: its digest is its diff id.
pub fn layer_desc(digest: &str, size: i64) -> Desc {
    Desc {
        media_type: manifest::OCI_LAYER.into(),
        digest: digest.into(),
        size,
        platform: None,
    }
}

/// Store `image` (config, manifest), unpack it and record it under `names`
/// (crid records an image under its id too: include it); `cd` must be
/// leased by the caller, who wrote the layers under the same lease.
/// Returns the manifest descriptor.
pub async fn store(cd: &Containerd, names: &[String], image: &LocalImage) -> Result<Descriptor> {
    let (_, diff_ids) = manifest::parse_config(&image.config)?;
    if diff_ids.len() != image.layers.len()
        || diff_ids
            .iter()
            .zip(&image.layers)
            .any(|(d, l)| *d != l.digest)
    {
        return Err(Error::invalid(
            "the config's diff ids are not the digests of the uncompressed layers",
        ));
    }
    let id = image.id();
    let (m, mbytes) = image.manifest();
    let top = manifest::chain_ids(&diff_ids).pop().unwrap_or_default();
    let cfg_labels = manifest::config_labels(cd.snapshotter(), &top);
    cd.write_content(
        &format!("local-config-{id}"),
        &id,
        image.config.clone(),
        cfg_labels.clone(),
    )
    .await?;
    // An existing blob keeps its labels through a write: set them.
    cd.update_content_labels(&id, cfg_labels).await?;
    let mdigest = manifest::sha256_digest(&mbytes);
    let labels = manifest::manifest_labels(&m);
    cd.write_content(
        &format!("local-manifest-{mdigest}"),
        &mdigest,
        mbytes.clone(),
        labels.clone(),
    )
    .await?;
    cd.update_content_labels(&mdigest, labels).await?;
    for layer in &m.layers {
        cd.update_content_labels(&layer.digest, manifest::layer_labels(&layer.digest))
            .await?;
    }
    unpack::unpack(cd, &m.layers, &diff_ids).await?;
    let target = Descriptor {
        media_type: manifest::OCI_MANIFEST.into(),
        digest: mdigest,
        size: mbytes.len() as i64,
        annotations: HashMap::new(),
    };
    store::register(cd, names, &target).await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_the_config_and_uncompressed_layers() {
        let layer = b"layer bytes".to_vec();
        let diff_id = manifest::sha256_digest(&layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let img = LocalImage {
            config: config.clone(),
            layers: vec![layer_desc(&diff_id, layer.len() as i64)],
        };
        let (m, bytes) = img.manifest();
        assert_eq!(m.config.digest, manifest::sha256_digest(&config));
        assert_eq!(img.id(), m.config.digest);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["mediaType"], manifest::OCI_MANIFEST);
        assert_eq!(v["layers"][0]["mediaType"], manifest::OCI_LAYER);
        assert_eq!(v["layers"][0]["digest"], diff_id.as_str());
        assert_eq!(v["config"]["size"], config.len());
    }
}
