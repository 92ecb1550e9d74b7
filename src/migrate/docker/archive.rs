//! Reading a `docker save` stream (docker 20.10's layout) as it arrives:
//! `<v1 id>/layer.tar` (uncompressed; a symlink to another layer dir's
//! `layer.tar` when dockerd shares one), `<config hex>.json`, and, last
//! in the stream, `manifest.json` (`[{"Config","RepoTags","Layers"}]`).
//! Each `layer.tar` is handed to a `LayerSink` while it streams; the small
//! JSON files are kept in memory. Blocking (the `tar` crate): run it on a
//! blocking thread.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;

/// Where layer contents go as they are read.
pub trait LayerSink {
    /// Store `size` bytes from `data` (the archive entry `name`); returns
    /// their digest, `sha256:<hex>`.
    fn store(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<String>;
}

/// An image of the archive, its layers already in the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedImage {
    /// The config file as dockerd wrote it (its digest is the image id).
    pub config: Vec<u8>,
    pub repo_tags: Vec<String>,
    /// `(digest, size)` of each uncompressed layer, bottom first.
    pub layers: Vec<(String, i64)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// JSON files bigger than this are not image configs or manifests.
const MAX_JSON: u64 = 16 << 20;

/// Read a whole `docker save` stream; layers go to `sink` as they come.
pub fn read(stream: impl Read, sink: &mut dyn LayerSink) -> Result<Vec<SavedImage>> {
    let bad = |e: std::io::Error| Error::io("docker save stream", e);
    let mut archive = tar::Archive::new(stream);
    // Entry path → (digest, size) of a stored layer.
    let mut layers: HashMap<String, (String, i64)> = HashMap::new();
    // Entry path → the layer path it links to.
    let mut links: HashMap<String, String> = HashMap::new();
    let mut json: HashMap<String, Vec<u8>> = HashMap::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").to_string();
        let kind = entry.header().entry_type();
        if path.ends_with("/layer.tar") || path == "layer.tar" {
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::invalid(format!("{path}: link without a target")))?
                    .to_string_lossy()
                    .into_owned();
                links.insert(
                    path.clone(),
                    resolve_link(&path, &target, kind.is_symlink()),
                );
            } else if kind.is_file() {
                let size = entry.size();
                let digest = sink.store(&path, size, &mut entry)?;
                layers.insert(path, (digest, size as i64));
            }
        } else if kind.is_file() && !path.contains('/') && path.ends_with(".json") {
            if entry.size() > MAX_JSON {
                return Err(Error::invalid(format!("{path}: {} bytes", entry.size())));
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(bad)?;
            json.insert(path, data);
        }
    }
    let manifest = json.get("manifest.json").ok_or_else(|| {
        Error::invalid("the archive has no manifest.json (not a docker 20.10 `docker save`)")
    })?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(manifest)
        .map_err(|e| Error::invalid(format!("manifest.json: {e}")))?;
    let mut out = vec![];
    for e in entries {
        let config = json
            .get(&e.config)
            .ok_or_else(|| Error::invalid(format!("config {} is not in the archive", e.config)))?
            .clone();
        let layers = e
            .layers
            .iter()
            .map(|l| find_layer(l, &layers, &links))
            .collect::<Result<Vec<_>>>()?;
        out.push(SavedImage {
            config,
            repo_tags: e.repo_tags.unwrap_or_default(),
            layers,
        });
    }
    Ok(out)
}

/// The archive path a link at `path` points to: a symlink's target is
/// relative to its directory, a hard link's to the archive root.
fn resolve_link(path: &str, target: &str, symlink: bool) -> String {
    let mut parts: Vec<&str> = if symlink {
        path.split('/').collect()
    } else {
        vec![""]
    };
    parts.pop();
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.retain(|p| !p.is_empty());
    parts.join("/")
}

fn find_layer(
    path: &str,
    layers: &HashMap<String, (String, i64)>,
    links: &HashMap<String, String>,
) -> Result<(String, i64)> {
    let mut p = path;
    // Links to links are followed a bounded number of times.
    for _ in 0..16 {
        if let Some(l) = layers.get(p) {
            return Ok(l.clone());
        }
        match links.get(p) {
            Some(next) => p = next,
            None => break,
        }
    }
    Err(Error::invalid(format!(
        "layer {path} is not in the archive"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, path, target).unwrap();
    }

    /// A sink that only hashes.
    #[derive(Default)]
    struct HashingSink {
        stored: Vec<(String, String, u64)>,
    }

    impl LayerSink for HashingSink {
        fn store(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<String> {
            let mut h = Sha256::new();
            let n = std::io::copy(data, &mut h).map_err(|e| Error::io(name, e))?;
            let digest = format!("sha256:{}", hex::encode(h.finalize()));
            self.stored
                .push((name.to_string(), digest.clone(), n.max(size)));
            Ok(digest)
        }
    }

    fn sha(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    /// The layout docker 20.10 writes for two images sharing a base layer,
    /// in its order: sorted, a link before the layer it points to.
    #[test]
    fn reads_layers_configs_and_shared_layer_links() {
        let mut b = tar::Builder::new(Vec::new());
        append(&mut b, "111/VERSION", b"1.0");
        append(&mut b, "111/json", b"{}");
        symlink(&mut b, "111/layer.tar", "../333/layer.tar");
        append(&mut b, "222/layer.tar", b"top layer");
        append(&mut b, "333/layer.tar", b"base layer");
        append(&mut b, "aaaa.json", b"{\"config\":1}");
        append(&mut b, "bbbb.json", b"{\"config\":2}");
        append(
            &mut b,
            "manifest.json",
            br#"[{"Config":"aaaa.json","RepoTags":["x:1","x:2"],"Layers":["333/layer.tar"]},
                 {"Config":"bbbb.json","RepoTags":null,"Layers":["111/layer.tar","222/layer.tar"]}]"#,
        );
        append(&mut b, "repositories", b"{}");
        let tar = b.into_inner().unwrap();

        let mut sink = HashingSink::default();
        let images = read(tar.as_slice(), &mut sink).unwrap();
        assert_eq!(sink.stored.len(), 2, "each layer stored once");
        let base = (sha(b"base layer"), 10);
        assert_eq!(images[0].config, b"{\"config\":1}");
        assert_eq!(images[0].repo_tags, ["x:1", "x:2"]);
        assert_eq!(images[0].layers, vec![base.clone()]);
        assert!(images[1].repo_tags.is_empty());
        assert_eq!(images[1].layers, vec![base, (sha(b"top layer"), 9)]);
    }

    #[test]
    fn an_archive_without_manifest_is_refused() {
        let mut b = tar::Builder::new(Vec::new());
        append(&mut b, "index.json", b"{}");
        let tar = b.into_inner().unwrap();
        let err = read(tar.as_slice(), &mut HashingSink::default()).unwrap_err();
        assert!(err.to_string().contains("manifest.json"), "{err}");
    }

    #[test]
    fn links_resolve_relative_to_their_directory() {
        assert_eq!(
            resolve_link("111/layer.tar", "../333/layer.tar", true),
            "333/layer.tar"
        );
        assert_eq!(
            resolve_link("111/layer.tar", "333/layer.tar", false),
            "333/layer.tar"
        );
    }
}
