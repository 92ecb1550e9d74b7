//! dockerd's images into crid's image store: which to take, which are
//! there already (every tag on an image of the same id), and the import of
//! one image: `GET /images/get` streamed through `archive::read`, each layer
//! straight into containerd's content store (hashed as it is written), then
//! stored, unpacked and recorded as crid records a pull, all under one
//! lease so that a failed import leaves nothing behind.

use super::archive::{self, LayerSink};
use crate::containerd::{Containerd, WRITE_CHUNK};
use crate::error::{Error, Result};
use crate::image::{layer_desc, ImageService, LocalImage, Reference};
use crate::migrate::docker::engine::{Docker, ImageSummary};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::io::Read;

/// The images `wanted` names (by tag, as docker or crid writes it, or by
/// id or id prefix), in dockerd's order; all of them when `wanted` is
/// empty. A name that matches nothing is an error.
pub fn select<'a>(all: &'a [ImageSummary], wanted: &[String]) -> Result<Vec<&'a ImageSummary>> {
    if wanted.is_empty() {
        return Ok(all.iter().collect());
    }
    let mut chosen: Vec<&ImageSummary> = vec![];
    for w in wanted {
        let by_id = w.trim_start_matches("sha256:");
        let norm = Reference::parse(w).ok().and_then(|r| r.tag_name());
        let found = all.iter().find(|i| {
            (by_id.len() >= 12
                && by_id.chars().all(|c| c.is_ascii_hexdigit())
                && i.id.trim_start_matches("sha256:").starts_with(by_id))
                || i.tags()
                    .any(|t| t == w || norm.is_some() && normalise(t) == norm)
        });
        match found {
            Some(i) if !chosen.iter().any(|c| c.id == i.id) => chosen.push(i),
            Some(_) => {}
            None => return Err(Error::not_found(format!("dockerd has no image {w:?}"))),
        }
    }
    Ok(chosen)
}

/// A docker tag as crid names images (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalise(tag: &str) -> Option<String> {
    Reference::parse(tag).ok().and_then(|r| r.tag_name())
}

/// How crid's image records stand for a docker image's tags.
#[derive(Debug, Default)]
pub struct TagCheck {
    /// The tags to record: crid lacks them, or has them on this image.
    pub take: Vec<String>,
    /// Tags crid has on another image, kept as they are: (tag, crid's id).
    pub kept: Vec<(String, String)>,
    /// crid has the image, under its id and every tag in `take`.
    pub present: bool,
}

/// Compare a docker image's tags with crid's records. The migration is
/// additive: a tag crid already gives another image keeps pointing there.
pub async fn check_tags(images: &ImageService, image: &ImageSummary) -> Result<TagCheck> {
    let mut check = TagCheck::default();
    let mut missing = false;
    for tag in image.tags() {
        match images.status(tag).await? {
            Some(r) if r.id == image.id => check.take.push(tag.to_string()),
            Some(r) => check.kept.push((tag.to_string(), r.id)),
            None => {
                missing = true;
                check.take.push(tag.to_string());
            }
        }
    }
    check.present = !missing && images.status(&image.id).await?.is_some();
    Ok(check)
}

/// What an import wrote.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub layers: usize,
    /// Bytes of the uncompressed layers.
    pub bytes: u64,
}

/// Import one image: stream it from dockerd (by id), store, unpack and
/// record it under `tags` (normalised) and its id. Everything is written
/// under one lease, deleted at the end: on failure, what was written goes
/// with it.
pub async fn import(
    docker: &Docker,
    images: &ImageService,
    image: &ImageSummary,
    tags: &[String],
) -> Result<Imported> {
    let path = format!(
        "/images/get?names={}",
        crate::util::uri::percent_encode(&image.id)
    );
    images
        .with_import_lease(|cd| async move {
            let body = docker
                .get_stream(&path)
                .await
                .map_err(|e| Error::Unavailable(format!("{e:#}")))?;
            let reader = tokio_util::io::StreamReader::new(
                http_body_util::BodyStream::new(body)
                    .map_ok(|frame| frame.into_data().unwrap_or_default())
                    .map_err(std::io::Error::other),
            );
            let bridge = tokio_util::io::SyncIoBridge::new(reader);
            let mut sink = ContentSink {
                rt: tokio::runtime::Handle::current(),
                cd: cd.clone(),
            };
            let saved = tokio::task::spawn_blocking(move || archive::read(bridge, &mut sink))
                .await
                .map_err(|e| Error::internal(format!("reading docker save: {e}")))??;
            let saved = saved
                .into_iter()
                .find(|s| sha256_digest(&s.config) == image.id)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "the archive dockerd sent has no config with digest {}",
                        image.id
                    ))
                })?;
            let local = LocalImage {
                config: saved.config,
                layers: saved
                    .layers
                    .iter()
                    .map(|(d, size)| layer_desc(d, *size))
                    .collect(),
            };
            images.store_local(&cd, tags, &local).await?;
            Ok(Imported {
                layers: saved.layers.len(),
                bytes: saved.layers.iter().map(|(_, s)| *s as u64).sum(),
            })
        })
        .await
}

fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Writes each layer into containerd's content store as it is read, from a
/// blocking thread (each containerd call is run on the runtime).
struct ContentSink {
    rt: tokio::runtime::Handle,
    cd: Containerd,
}

impl LayerSink for ContentSink {
    fn store(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<String> {
        // One ingest per layer entry: a run that died mid-layer left it, and
        // this one starts it again from 0.
        let reference = format!("crid-migrate-{}", name.replace('/', "-"));
        let mut w = self
            .rt
            .block_on(self.cd.blob_writer(&reference, size as i64, ""))?
            .ok_or_else(|| Error::internal("containerd took an ingest without digest as stored"))?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; WRITE_CHUNK];
        let mut written = 0u64;
        let result = loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(Error::io(format!("read {name}"), e)),
            };
            hash.update(&buf[..n]);
            written += n as u64;
            if let Err(e) = self.rt.block_on(w.write(&buf[..n])) {
                break Err(e);
            }
        };
        if let Err(e) = result {
            self.rt.block_on(w.abort());
            return Err(e);
        }
        if written != size {
            self.rt.block_on(w.abort());
            return Err(Error::invalid(format!(
                "{name}: {written} bytes, the archive said {size}"
            )));
        }
        let digest = format!("sha256:{}", hex::encode(hash.finalize()));
        self.rt
            .block_on(w.commit(size as i64, &digest, Default::default()))?;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<ImageSummary> {
        serde_json::from_str(
            r#"[{"Id":"sha256:1111111111111111111111111111111111111111111111111111111111111111","RepoTags":["busybox:latest","example.com/app:v1"]},
                {"Id":"sha256:2222222222222222222222222222222222222222222222222222222222222222","RepoTags":null}]"#,
        )
        .unwrap()
    }

    #[test]
    fn selects_by_docker_tag_crid_name_or_id_prefix() {
        let all = list();
        let ids = |w: &[&str]| -> Vec<String> {
            let w: Vec<String> = w.iter().map(|s| s.to_string()).collect();
            select(&all, &w)
                .unwrap()
                .iter()
                .map(|i| i.id[7..11].to_string())
                .collect()
        };
        assert_eq!(ids(&[]), ["1111", "2222"]);
        assert_eq!(ids(&["busybox"]), ["1111"]);
        assert_eq!(
            ids(&["docker.io/library/busybox:latest", "example.com/app:v1"]),
            ["1111"]
        );
        assert_eq!(ids(&["222222222222"]), ["2222"]);
        assert!(select(&all, &["nothere:1".to_string()]).is_err());
    }

    #[test]
    fn docker_tags_normalise_as_crid_names_images() {
        assert_eq!(
            normalise("busybox:latest").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalise("test/base:v1").unwrap(), "docker.io/test/base:v1");
        assert_eq!(
            normalise("127.0.0.1:5000/app:v2").unwrap(),
            "127.0.0.1:5000/app:v2"
        );
    }
}
