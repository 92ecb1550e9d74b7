//! Image records in containerd's image store, as containerd's CRI keeps
//! them: one record per name (tag ref, digest ref, `sha256:<config>` id),
//! crid's records carrying `OWNER_LABEL`. Owns reading an image back from
//! content (target → platform manifest → config) and grouping names by id.

use super::manifest::{self, Manifest, Parsed};
use super::reference::{as_image_id, Reference};
use crate::containerd::{Containerd, Descriptor, Image, OWNER_LABEL, OWNER_VALUE};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An image read back from the content store.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub target_digest: String,
    pub manifest: Manifest,
    /// `sha256:<config digest>`.
    pub id: String,
    pub config: oci_spec::image::ImageConfiguration,
    pub diff_ids: Vec<String>,
    /// Chain id of the top layer: the parent of a container's rootfs snapshot.
    pub chain_id: String,
    pub size: u64,
}

/// Immutable (content-addressed) cache: target digest → loaded image.
#[derive(Default)]
pub struct LoadCache(Mutex<HashMap<String, Arc<Loaded>>>);

impl LoadCache {
    pub async fn load(&self, cd: &Containerd, target: &Descriptor) -> Result<Arc<Loaded>> {
        if let Some(l) = self.0.lock().unwrap().get(&target.digest) {
            return Ok(l.clone());
        }
        let l = Arc::new(load(cd, target).await?);
        self.0
            .lock()
            .unwrap()
            .insert(target.digest.clone(), l.clone());
        Ok(l)
    }
}

async fn load(cd: &Containerd, target: &Descriptor) -> Result<Loaded> {
    let data = cd.read_content(&target.digest).await?;
    let media_type = if target.media_type.is_empty() {
        manifest::media_type_of(&data)?
    } else {
        target.media_type.clone()
    };
    let (m, msize) = match manifest::parse(&media_type, &data)? {
        Parsed::Manifest(m) => (m, data.len() as u64),
        Parsed::Index(idx) => {
            let d = manifest::select_platform(&idx)?;
            let md = cd.read_content(&d.digest).await?;
            match manifest::parse(&d.media_type, &md)? {
                Parsed::Manifest(m) => (m, md.len() as u64),
                Parsed::Index(_) => return Err(Error::invalid("nested index")),
            }
        }
    };
    let cfg = cd.read_content(&m.config.digest).await?;
    let (config, diff_ids) = manifest::parse_config(&cfg)?;
    let size =
        msize + cfg.len() as u64 + m.layers.iter().map(|l| l.size.max(0) as u64).sum::<u64>();
    let chain_id = manifest::chain_ids(&diff_ids).pop().unwrap_or_default();
    Ok(Loaded {
        target_digest: target.digest.clone(),
        id: m.config.digest.clone(),
        manifest: m,
        config,
        diff_ids,
        chain_id,
        size,
    })
}

pub fn owned(img: &Image) -> bool {
    img.labels.get(OWNER_LABEL).map(String::as_str) == Some(OWNER_VALUE)
}

/// Point each of `names` at `target`. A name held by a record crid did not
/// create is left alone.
pub async fn register(cd: &Containerd, names: &[String], target: &Descriptor) -> Result<()> {
    for name in names {
        if let Some(existing) = cd.get_image(name).await? {
            if !owned(&existing) {
                tracing::warn!(name, "image name is held by a record crid did not create");
                continue;
            }
        }
        cd.put_image(Image {
            name: name.clone(),
            labels: HashMap::from([(OWNER_LABEL.to_string(), OWNER_VALUE.to_string())]),
            target: Some(target.clone()),
            ..Default::default()
        })
        .await?;
    }
    Ok(())
}

/// The names a pulled image is recorded under.
pub fn names_for(r: &Reference, target_digest: &str, id: &str) -> Vec<String> {
    let mut names = vec![];
    if let Some(t) = r.tag_name() {
        if r.digest.is_none() {
            names.push(t);
        }
    }
    names.push(r.digest_name(target_digest));
    names.push(id.to_string());
    names
}

/// The record a reference names directly (id, normalised name, or the raw
/// string as `ctr` users may have written it).
pub async fn find_record(cd: &Containerd, reference: &str) -> Result<Option<Image>> {
    let mut candidates = vec![];
    if let Some(id) = as_image_id(reference) {
        candidates.push(id);
    } else if let Ok(r) = Reference::parse(reference) {
        candidates.push(r.full());
    }
    candidates.push(reference.to_string());
    for c in candidates {
        if let Some(img) = cd.get_image(&c).await? {
            return Ok(Some(img));
        }
    }
    Ok(None)
}

/// Every record with the id its target resolves to; records whose content
/// is missing or unreadable are skipped.
pub async fn all_records(cd: &Containerd, cache: &LoadCache) -> Result<Vec<(Image, Arc<Loaded>)>> {
    let mut out = vec![];
    for img in cd.list_images(vec![]).await? {
        let Some(target) = img.target.clone() else {
            continue;
        };
        match cache.load(cd, &target).await {
            Ok(l) => out.push((img, l)),
            Err(e) => tracing::debug!(name = %img.name, "skipping image: {e}"),
        }
    }
    Ok(out)
}

/// Tags and digests of an image from the names of its records.
pub fn tags_and_digests(records: &[&(Image, Arc<Loaded>)]) -> (Vec<String>, Vec<String>) {
    let mut tags = vec![];
    let mut digests = vec![];
    for (img, l) in records {
        let name = img.name.as_str();
        if as_image_id(name).is_some() {
            continue;
        }
        if name.contains('@') {
            digests.push(name.to_string());
        } else {
            tags.push(name.to_string());
            if let Ok(r) = Reference::parse(name) {
                digests.push(r.digest_name(&l.target_digest));
            }
        }
    }
    tags.sort();
    tags.dedup();
    digests.sort();
    digests.dedup();
    (tags, digests)
}
