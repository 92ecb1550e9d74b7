//! Images: pull from registries into containerd's content store, unpack into
//! snapshots, register in containerd's image store; list, status, remove;
//! the locally built pause image. Knows nothing of gRPC.

mod hosts;
mod layers;
mod local;
mod manifest;
mod pause;
mod pull;
mod reference;
mod registry;
mod store;
mod token;
mod unpack;

pub use hosts::{endpoints as registry_endpoints, Endpoint};
pub use local::{layer_desc, LocalImage};
pub use pause::{is_builtin as is_builtin_pause, layer as builtin_pause_layer};
pub use reference::Reference;

use crate::config::Config;
use crate::containerd::{Containerd, Descriptor};
use crate::error::{Error, Result};
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use store::find_record;
use store::LoadCache;
pub use store::Loaded;

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

type SharedPull = Shared<BoxFuture<'static, std::result::Result<String, Arc<Error>>>>;

/// Cheap to clone: the state lives behind an `Arc`.
#[derive(Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

struct Inner {
    containerd: Containerd,
    sandbox_image: String,
    registry_config: PathBuf,
    progress_timeout: Duration,
    max_downloads: usize,
    /// Pulls under way, by normalised reference (singleflight).
    inflight: Mutex<HashMap<String, SharedPull>>,
    cache: LoadCache,
    /// The sandbox image once resolved: every RunPodSandbox needs it
    /// (see `ensure_sandbox_image`).
    sandbox_record: Mutex<Option<Arc<Loaded>>>,
    /// Held while the sandbox image is looked up, pulled or built: callers
    /// that find no record (crid's start-up and the first RunPodSandboxes)
    /// wait for one setup instead of writing the same ingests at once.
    sandbox_setup: tokio::sync::Mutex<()>,
    /// Pull leases this process holds; any other `crid-pull-` lease is a
    /// leftover of a crid that died mid-pull.
    live_leases: Mutex<HashSet<String>>,
    /// Layers straight into containerd's content store, or streamed.
    direct_writes: layers::DirectWrites,
    /// The layers pulls are storing now, one pull per layer.
    layer_locks: layers::LayerLocks,
}

/// Lease lifetime: long enough for any pull, short enough that a crashed
/// crid's leftovers go even if no crid starts again.
const LEASE_SECS: u64 = 3600;

/// Id prefix of the leases pulls and unpacks run under.
const PULL_LEASE_PREFIX: &str = "crid-pull-";

/// Id prefix of the leases imports (`crid migrate docker`) run under: not
/// a pull's, so a crid starting meanwhile leaves them to the process that
/// holds them (they expire like pull leases if it dies).
const IMPORT_LEASE_PREFIX: &str = "crid-import-";

impl ImageService {
    pub fn new(containerd: Containerd, config: &Config) -> Self {
        ImageService {
            inner: Arc::new(Inner {
                containerd,
                sandbox_image: config.sandbox_image.clone(),
                registry_config: config.registry.config_path.clone(),
                progress_timeout: Duration::from_secs(
                    config.registry.pull_progress_timeout_secs.max(1),
                ),
                max_downloads: config.registry.max_concurrent_downloads.max(1),
                inflight: Mutex::new(HashMap::new()),
                cache: LoadCache::default(),
                sandbox_record: Mutex::new(None),
                sandbox_setup: tokio::sync::Mutex::new(()),
                live_leases: Mutex::new(HashSet::new()),
                direct_writes: layers::DirectWrites::new(config.containerd.direct_layer_writes),
                layer_locks: Default::default(),
            }),
        }
    }

    pub fn sandbox_image(&self) -> &str {
        &self.inner.sandbox_image
    }

    /// Pull `reference`; returns the image id. Concurrent pulls of the same
    /// reference share one download.
    pub async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<String> {
        let r = Reference::parse(reference)?;
        let key = r.full();
        let fut = {
            let mut inflight = self.inner.inflight.lock().unwrap();
            match inflight.get(&key) {
                Some(f) => {
                    tracing::debug!(image = %key, "joining a pull under way");
                    f.clone()
                }
                None => {
                    let inner = self.inner.clone();
                    let auth = auth.cloned();
                    let k = key.clone();
                    let task = tokio::spawn(async move {
                        let res = inner.pull(&r, auth.as_ref()).await;
                        inner.inflight.lock().unwrap().remove(&k);
                        // The download buffers are free now: hand the pages back.
                        drop(tokio::task::spawn_blocking(
                            crate::util::platform::release_free_memory,
                        ));
                        res
                    });
                    let f = async move {
                        match task.await {
                            Ok(r) => r.map_err(Arc::new),
                            Err(e) => Err(Arc::new(Error::internal(format!("pull task: {e}")))),
                        }
                    }
                    .boxed()
                    .shared();
                    inflight.insert(key.clone(), f.clone());
                    f
                }
            }
        };
        fut.await.map_err(|e| unshare(&e))
    }

    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ImageRecord>> {
        let mut images = self.inner.records().await?;
        if let Some(f) = filter.filter(|f| !f.is_empty()) {
            let Some(wanted) = self.inner.find(f).await? else {
                return Ok(vec![]);
            };
            images.retain(|i| i.id == wanted.id);
        }
        Ok(images)
    }

    /// `None` when the image is not present.
    pub async fn status(&self, reference: &str) -> Result<Option<ImageRecord>> {
        let Some(l) = self.inner.find(reference).await? else {
            return Ok(None);
        };
        Ok(self
            .inner
            .records()
            .await?
            .into_iter()
            .find(|i| i.id == l.id))
    }

    /// Remove by id, tag or digest; a missing image is not an error. Every
    /// name crid recorded for the image goes; containerd's GC does the rest.
    /// The sandbox image too, as containerd's CRI removes it: `pinned` only
    /// keeps kubelet's image GC off it. The next pod gets it back
    /// (`ensure_sandbox_image` pulls or builds it again).
    pub async fn remove(&self, reference: &str) -> Result<()> {
        let inner = &self.inner;
        let Some(l) = inner.find(reference).await? else {
            return Ok(());
        };
        let records = store::all_records(&inner.containerd, &inner.cache).await?;
        let mine: Vec<_> = records.iter().filter(|(_, x)| x.id == l.id).collect();
        // Removing the sandbox image waits for a setup under way, and drops
        // the cached record so that no pod starts from what is going.
        let _setup = if inner.is_pinned(&mine) {
            let guard = inner.sandbox_setup.lock().await;
            self.forget_sandbox_image();
            Some(guard)
        } else {
            None
        };
        for (img, _) in mine {
            if store::owned(img) {
                inner.containerd.delete_image(&img.name).await?;
            } else {
                tracing::info!(name = %img.name, "not removing an image crid did not create");
            }
        }
        Ok(())
    }

    /// Look up containerd's content store for direct layer writes, once per
    /// process; that clears what a crid that died mid-pull staged there.
    pub async fn prepare_direct_writes(&self) {
        let _ = self.inner.direct_writes.store(&self.inner.containerd).await;
    }

    /// Delete the pull leases a crid that died mid-pull left behind, so what
    /// they protected (blobs, ingests, snapshots of an image never
    /// registered) is collected now rather than when the lease expires.
    /// Leases of this process's own pulls are kept: safe to call any time.
    pub async fn remove_leftover_leases(&self) {
        let cd = &self.inner.containerd;
        let leases = match cd
            .list_leases(vec![format!(
                "labels.\"{}\"=={}",
                crate::containerd::OWNER_LABEL,
                crate::containerd::OWNER_VALUE
            )])
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pull leases");
                return;
            }
        };
        for l in leases {
            if !l.id.starts_with(PULL_LEASE_PREFIX)
                || self.inner.live_leases.lock().unwrap().contains(&l.id)
            {
                continue;
            }
            tracing::warn!(lease = %l.id, "pull lease left by an interrupted pull; deleting");
            if let Err(e) = cd.delete_lease(&l.id).await {
                tracing::warn!(lease = %l.id, error = %e, "cannot delete leftover pull lease");
            }
        }
    }

    pub async fn fs_info(&self) -> Result<FsUsage> {
        let cd = &self.inner.containerd;
        let root = match cd.snapshotter_root().await? {
            Some(r) => r,
            None => return Err(Error::not_found("snapshotter root not exported")),
        };
        let path = PathBuf::from(&root);
        let (bytes, inodes) = tokio::task::spawn_blocking(move || disk_usage(&path))
            .await
            .map_err(|e| Error::internal(format!("disk usage: {e}")))?;
        Ok(FsUsage {
            mountpoint: root,
            used_bytes: bytes,
            inodes_used: inodes,
            timestamp_nanos: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        })
    }

    /// Make sure the sandbox image is present and unpacked: pull it, or build
    /// crid's own pause image locally when it cannot be pulled. Once found,
    /// it is kept in memory and not checked again: the image is pinned, so
    /// kubelet's GC leaves it, and RemoveImage of it drops this cache. If its
    /// snapshots went anyway (a `NotFound` from preparing a rootfs on them),
    /// `forget_sandbox_image` and call this again.
    pub async fn ensure_sandbox_image(&self) -> Result<Arc<Loaded>> {
        let cached = || self.inner.sandbox_record.lock().unwrap().clone();
        if let Some(rec) = cached() {
            return Ok(rec);
        }
        let _setup = self.inner.sandbox_setup.lock().await;
        // Set up by the caller this one waited for.
        if let Some(rec) = cached() {
            return Ok(rec);
        }
        let rec = self.ensure_sandbox_image_uncached().await?;
        *self.inner.sandbox_record.lock().unwrap() = Some(rec.clone());
        Ok(rec)
    }

    /// Drop the cached sandbox image: the next `ensure_sandbox_image` looks
    /// it up (and unpacks, pulls or builds it) again.
    pub fn forget_sandbox_image(&self) {
        self.inner.sandbox_record.lock().unwrap().take();
    }

    async fn ensure_sandbox_image_uncached(&self) -> Result<Arc<Loaded>> {
        let name = self.inner.sandbox_image.clone();
        if let Ok(rec) = self.resolve(&name).await {
            return Ok(rec);
        }
        match self.pull(&name, None).await {
            Ok(_) => return self.resolve(&name).await,
            Err(e) => {
                tracing::warn!(image = %name, "cannot pull the sandbox image, building crid's own: {e}")
            }
        }
        self.inner.build_pause(&name).await?;
        self.resolve(&name).await
    }

    /// Run `f` with a client whose calls are all under a fresh lease,
    /// deleted when `f` returns: what `f` writes is safe from containerd's
    /// GC until an image record references it. If `f` fails, what it wrote
    /// and did not record is collected before this returns.
    pub async fn with_import_lease<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Containerd) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.inner
            .with_lease_then(f, IMPORT_LEASE_PREFIX, true)
            .await
    }

    /// Store an image made on the node, its layers written through `cd`
    /// (a client from `with_import_lease`), under `tags` (normalised as pulls
    /// name images: `busybox` is `docker.io/library/busybox:latest`) and
    /// its id; unpacked. Records only the names given: no repo digest.
    pub async fn store_local(
        &self,
        cd: &Containerd,
        tags: &[String],
        image: &LocalImage,
    ) -> Result<()> {
        let mut names = tags
            .iter()
            .map(|t| {
                Reference::parse(t)?
                    .tag_name()
                    .ok_or_else(|| Error::invalid(format!("{t:?} is not a tag")))
            })
            .collect::<Result<Vec<_>>>()?;
        names.push(image.id());
        local::store(cd, &names, image).await.map(drop)
    }

    /// The image a container is created from (by id, tag or digest),
    /// unpacked; `NotFound` when absent. One record lookup and one snapshot
    /// stat: the image's content is cached by digest.
    pub async fn resolve(&self, reference: &str) -> Result<Arc<Loaded>> {
        let inner = &self.inner;
        let Some(l) = inner.find(reference).await? else {
            return Err(Error::not_found(format!("image {reference:?}")));
        };
        if inner.containerd.stat_snapshot(&l.chain_id).await?.is_none() {
            tracing::info!(
                image = reference,
                "unpacking image whose layers are not unpacked"
            );
            let unpacking = l.clone();
            inner
                .with_lease(|cd| async move { inner.unpack(&cd, &unpacking).await.map(|_| ()) })
                .await?;
        }
        Ok(l)
    }
}

/// The numeric uid, or the user name, of an image's `USER`.
pub fn image_user(config: &oci_spec::image::ImageConfiguration) -> (Option<i64>, String) {
    let user = config
        .config()
        .as_ref()
        .and_then(|c| c.user().clone())
        .unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default();
    if user.is_empty() {
        return (None, String::new());
    }
    match user.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, user.to_string()),
    }
}

/// A pull lease of this process. Dropped before the work under it ended
/// (the caller went away), it deletes the lease in the background.
struct LiveLease<'a> {
    inner: &'a Inner,
    id: String,
    deleted: bool,
}

impl Drop for LiveLease<'_> {
    fn drop(&mut self) {
        self.inner.live_leases.lock().unwrap().remove(&self.id);
        if !self.deleted {
            let cd = self.inner.containerd.clone();
            let id = std::mem::take(&mut self.id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = cd.delete_lease(&id).await {
                        tracing::warn!(lease = %id, "cannot delete lease: {e}");
                    }
                });
            }
        }
    }
}

/// Rebuild an error shared between joined pulls.
fn unshare(e: &Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::AlreadyExists(m) => Error::AlreadyExists(m.clone()),
        Error::FailedPrecondition(m) => Error::FailedPrecondition(m.clone()),
        Error::Unauthenticated(m) => Error::Unauthenticated(m.clone()),
        Error::DeadlineExceeded(m) => Error::DeadlineExceeded(m.clone()),
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::Containerd { op, status } => Error::Containerd {
            op,
            status: tonic::Status::new(status.code(), status.message()),
        },
        other => Error::Internal(other.to_string()),
    }
}

fn disk_usage(root: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let mut inodes = 0;
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if seen.insert((md.dev(), md.ino())) {
                bytes += md.blocks() * 512;
                inodes += 1;
            }
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, inodes)
}

impl Inner {
    /// Run `f` with a client whose calls are under a fresh lease, then drop the lease.
    async fn with_lease<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Containerd) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.with_lease_then(f, PULL_LEASE_PREFIX, false).await
    }

    /// `with_lease` under a lease whose id starts with `prefix`; with
    /// `collect_on_failure`, a failed `f`'s lease is deleted with a synchronous GC, so what it alone held is gone on
    /// return (a pull keeps it for the GC's next run: a retry may resume
    /// its ingests).
    async fn with_lease_then<T, F, Fut>(
        &self,
        f: F,
        prefix: &str,
        collect_on_failure: bool,
    ) -> Result<T>
    where
        F: FnOnce(Containerd) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let id = format!("{prefix}{}", hex::encode(rand::random::<[u8; 8]>()));
        // Known as live before it exists, so a concurrent
        // `remove_leftover_leases` never takes it for a leftover.
        let mut guard = LiveLease {
            inner: self,
            id: id.clone(),
            deleted: false,
        };
        self.live_leases.lock().unwrap().insert(id.clone());
        self.containerd.create_lease(&id, LEASE_SECS).await?;
        let res = f(self.containerd.with_lease(&id)).await;
        let deleted = if res.is_ok() || !collect_on_failure {
            self.containerd.delete_lease(&id).await
        } else {
            self.containerd.delete_lease_and_collect(&id).await
        };
        if let Err(e) = deleted {
            tracing::warn!(lease = %id, "cannot delete lease: {e}");
        }
        guard.deleted = true;
        res
    }

    async fn pull(&self, r: &Reference, auth: Option<&RegistryAuth>) -> Result<String> {
        let endpoints = hosts::endpoints(&self.registry_config, &r.domain)?;
        let credentials = pull::credentials(auth)?;
        tracing::info!(image = %r.full(), "pulling");
        self.with_lease(|cd| async move {
            let puller = pull::Puller {
                containerd: &cd,
                progress_timeout: self.progress_timeout,
                credentials,
                direct: &self.direct_writes,
                layers: &self.layer_locks,
                max_downloads: self.max_downloads,
            };
            // Fetched and unpacked, everything under the lease; the record
            // below is what makes the image visible.
            let fetched = puller.fetch(&endpoints, r).await?;
            let id = fetched.manifest.config.digest.clone();
            let target = Descriptor {
                media_type: fetched.target.media_type.clone(),
                digest: fetched.target.digest.clone(),
                size: fetched.target.size,
                annotations: HashMap::new(),
            };
            store::register(&cd, &store::names_for(r, &target.digest, &id), &target).await?;
            tracing::info!(image = %r.full(), id = %id, "pulled");
            Ok(id)
        })
        .await
    }

    /// Unpack a loaded image and label its config with the top snapshot.
    async fn unpack(&self, cd: &Containerd, l: &Loaded) -> Result<String> {
        let top = unpack::unpack(cd, &l.manifest.layers, &l.diff_ids).await?;
        cd.update_content_labels(&l.id, manifest::config_labels(cd.snapshotter(), &top))
            .await?;
        for (layer, diff_id) in l.manifest.layers.iter().zip(&l.diff_ids) {
            cd.update_content_labels(&layer.digest, manifest::layer_labels(diff_id))
                .await?;
        }
        Ok(top)
    }

    /// The image a reference names: by record name, else (for an id) any
    /// record whose config digest matches.
    async fn find(&self, reference: &str) -> Result<Option<Arc<Loaded>>> {
        let cd = &self.containerd;
        if let Some(img) = store::find_record(cd, reference).await? {
            if let Some(t) = img.target {
                return match self.cache.load(cd, &t).await {
                    Ok(l) => Ok(Some(l)),
                    // A record whose content is gone is no usable image.
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                };
            }
        }
        if let Some(id) = reference::as_image_id(reference) {
            let all = store::all_records(cd, &self.cache).await?;
            return Ok(all.into_iter().map(|(_, l)| l).find(|l| l.id == id));
        }
        Ok(None)
    }

    fn is_pinned(&self, records: &[&(crate::containerd::Image, Arc<Loaded>)]) -> bool {
        let sandbox = Reference::parse(&self.sandbox_image)
            .map(|r| r.full())
            .unwrap_or_else(|_| self.sandbox_image.clone());
        records.iter().any(|(i, _)| i.name == sandbox)
    }

    /// All images, one entry per id.
    async fn records(&self) -> Result<Vec<ImageRecord>> {
        let all = store::all_records(&self.containerd, &self.cache).await?;
        let mut ids: Vec<&str> = all.iter().map(|(_, l)| l.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        let mut out = vec![];
        for id in ids {
            let mine: Vec<_> = all.iter().filter(|(_, l)| l.id == id).collect();
            let l = &mine[0].1;
            let (repo_tags, repo_digests) = store::tags_and_digests(&mine);
            out.push(ImageRecord {
                id: id.to_string(),
                repo_tags,
                repo_digests,
                size: l.size,
                config: l.config.clone(),
                chain_id: l.chain_id.clone(),
                pinned: self.is_pinned(&mine),
            });
        }
        Ok(out)
    }

    /// Store crid's built-in pause image under `name`, like a pull would.
    async fn build_pause(&self, name: &str) -> Result<()> {
        let r = Reference::parse(name)?;
        let b = pause::build();
        self.with_lease(|cd| async move {
            cd.write_content(
                &format!("pause-layer-{}", b.diff_id),
                &b.diff_id,
                b.layer.clone(),
                manifest::layer_labels(&b.diff_id),
            )
            .await?;
            let id = b.image.id();
            let mdigest = manifest::sha256_digest(&b.image.manifest().1);
            local::store(&cd, &store::names_for(&r, &mdigest, &id), &b.image).await?;
            tracing::info!(image = name, id = %id, "built crid's pause image");
            Ok(())
        })
        .await
    }
}
