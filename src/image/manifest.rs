//! Image manifests, indexes and configs (OCI and Docker schema2): parsing,
//! platform selection, chain ids and the GC labels containerd uses.
//! Pure functions, no I/O.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Media types crid asks registries for.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// The node's platform.
pub const OS: &str = "linux";
pub const ARCH: &str = "amd64";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Desc {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub config: Desc,
    #[serde(default)]
    pub layers: Vec<Desc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    pub manifests: Vec<Desc>,
}

/// What a blob fetched by reference turned out to be.
pub enum Parsed {
    Index(Index),
    Manifest(Manifest),
}

/// The media type of a manifest blob (from its `mediaType`, else its shape).
pub fn media_type_of(data: &[u8]) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| Error::invalid(format!("manifest is not JSON: {e}")))?;
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return Ok(mt.to_string());
    }
    if v.get("manifests").is_some() {
        Ok(OCI_INDEX.into())
    } else if v.get("config").is_some() {
        Ok(OCI_MANIFEST.into())
    } else {
        Err(Error::invalid("unsupported manifest (schema1?)"))
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn parse(media_type: &str, data: &[u8]) -> Result<Parsed> {
    let bad = |e: serde_json::Error| Error::invalid(format!("{media_type}: {e}"));
    if is_index(media_type) {
        Ok(Parsed::Index(serde_json::from_slice(data).map_err(bad)?))
    } else if media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST {
        Ok(Parsed::Manifest(serde_json::from_slice(data).map_err(bad)?))
    } else {
        Err(Error::invalid(format!(
            "unsupported media type {media_type}"
        )))
    }
}

/// The manifest of an index for linux/amd64.
pub fn select_platform(index: &Index) -> Result<Desc> {
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .map(|p| p.os == OS && p.architecture == ARCH)
                .unwrap_or(false)
        })
        .cloned()
        .ok_or_else(|| Error::not_found(format!("no manifest for {OS}/{ARCH} in the index")))
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// chainID[0] = diffID[0]; chainID[n] = sha256(chainID[n-1] + " " + diffID[n]).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Labels of a manifest blob: references to its config and layers.
pub fn manifest_labels(m: &Manifest) -> HashMap<String, String> {
    let mut l = HashMap::new();
    l.insert(
        "containerd.io/gc.ref.content.config".to_string(),
        m.config.digest.clone(),
    );
    for (i, layer) in m.layers.iter().enumerate() {
        l.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    l
}

/// Labels of an index blob: references to the manifests crid fetched.
pub fn index_labels(children: &[&str]) -> HashMap<String, String> {
    children
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("containerd.io/gc.ref.content.m.{i}"), d.to_string()))
        .collect()
}

/// Label of a config blob: the top snapshot of the unpacked image.
pub fn config_labels(snapshotter: &str, top_chain: &str) -> HashMap<String, String> {
    HashMap::from([(
        format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
        top_chain.to_string(),
    )])
}

pub fn layer_labels(diff_id: &str) -> HashMap<String, String> {
    HashMap::from([(
        "containerd.io/uncompressed".to_string(),
        diff_id.to_string(),
    )])
}

/// Parse an image config; returns it with its layers' diff ids.
pub fn parse_config(data: &[u8]) -> Result<(oci_spec::image::ImageConfiguration, Vec<String>)> {
    let cfg: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(data).map_err(|e| Error::invalid(format!("image config: {e}")))?;
    let diff_ids = cfg.rootfs().diff_ids().to_vec();
    Ok((cfg, diff_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let d1 = sha256_digest(b"one");
        let d2 = sha256_digest(b"two");
        let d3 = sha256_digest(b"three");
        let c = chain_ids(&[d1.clone(), d2.clone(), d3.clone()]);
        assert_eq!(c[0], d1);
        assert_eq!(c[1], sha256_digest(format!("{d1} {d2}").as_bytes()));
        assert_eq!(c[2], sha256_digest(format!("{} {d3}", c[1]).as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn picks_linux_amd64_from_an_index() {
        let idx: Index = serde_json::from_str(
            r#"{"manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"architecture":"arm64","os":"linux"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":2,"platform":{"architecture":"amd64","os":"linux"}}]}"#,
        )
        .unwrap();
        assert_eq!(select_platform(&idx).unwrap().digest, "sha256:b");
        assert!(select_platform(&Index { manifests: vec![] }).is_err());
    }

    #[test]
    fn media_types_from_field_or_shape() {
        assert_eq!(
            media_type_of(
                br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#
            )
            .unwrap(),
            DOCKER_MANIFEST
        );
        assert_eq!(media_type_of(br#"{"manifests":[]}"#).unwrap(), OCI_INDEX);
        assert!(media_type_of(br#"{"schemaVersion":1}"#).is_err());
    }
}
