//! Fetching an image from a registry into containerd's content store:
//! endpoint fallback (hosts.toml), platform selection, streamed and
//! digest-verified blobs with GC labels, the no-progress timeout, and the
//! download/unpack pipeline (each stored layer goes to the `Unpacker` in
//! order while later layers still download). The registry protocol is
//! `RegistryClient`'s.
//! Unpacking itself and image records are elsewhere.

use super::hosts::Endpoint;
use super::layers::{stopped, DirectWrites, LayerLocks};
use super::manifest::{self, Desc, Manifest, Parsed};
use super::reference::Reference;
use super::registry::RegistryClient;
pub use super::token::Credentials;
use super::unpack::Unpacker;
use super::RegistryAuth;
use crate::containerd::{Containerd, LocalContentStore, Published};
use crate::error::{Error, Result};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// The largest image config crid reads.
const MAX_CONFIG: usize = 16 << 20;

/// Bytes a direct layer download hands its writer thread at a time. With
/// two batches queued per layer, 128 KiB kept the pull's speed and took
/// ~3 MiB off crid's peak during a 3-layers-at-once pull against 256 KiB
/// and four (`scripts/pull-bench.sh`, 5 rounds: peak 27.0 against 30.3 MiB).
const SINK_BATCH: usize = 128 << 10;

/// Batches queued for a layer's writer thread while it writes one.
const SINK_QUEUE: usize = 2;

/// What a pull fetched and unpacked: the descriptor the reference resolved
/// to (an index or a manifest), and the platform manifest with its config.
pub struct Fetched {
    pub target: Desc,
    pub manifest: Manifest,
}

/// A pull in progress. Each endpoint it tries gets a `RegistryClient` of
/// its own, which keeps the answer to the registry's challenge for this
/// pull only.
pub struct Puller<'a> {
    pub containerd: &'a Containerd,
    pub progress_timeout: Duration,
    pub credentials: Credentials,
    pub direct: &'a DirectWrites,
    pub layers: &'a LayerLocks,
    /// Layer downloads at once (`registry.max_concurrent_downloads`; at
    /// least 1, as `ImageService::new` makes it).
    pub max_downloads: usize,
}

/// The CRI credentials in containerd's order of precedence: a registry
/// token, a username, an identity token, then `auth`.
pub fn credentials(auth: Option<&RegistryAuth>) -> Result<Credentials> {
    let Some(a) = auth else {
        return Ok(Credentials::Anonymous);
    };
    let basic = |username: &str, password: &str| Credentials::Basic {
        username: username.into(),
        password: password.into(),
    };
    if !a.registry_token.is_empty() {
        return Ok(Credentials::RegistryToken(a.registry_token.clone()));
    }
    if !a.username.is_empty() || !a.password.is_empty() {
        return Ok(basic(&a.username, &a.password));
    }
    if !a.identity_token.is_empty() {
        return Ok(Credentials::IdentityToken(a.identity_token.clone()));
    }
    if !a.auth.is_empty() {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| Error::invalid(format!("auth is not base64: {e}")))?;
        let s = String::from_utf8(raw).map_err(|_| Error::invalid("auth is not UTF-8"))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| Error::invalid("auth is not user:password"))?;
        return Ok(basic(u, p));
    }
    Ok(Credentials::Anonymous)
}

impl Puller<'_> {
    async fn timed<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(self.progress_timeout, f)
            .await
            .map_err(|_| {
                Error::DeadlineExceeded(format!(
                    "{what}: no progress for {}s",
                    self.progress_timeout.as_secs()
                ))
            })?
    }

    /// Try the endpoints in order; the first that resolves the reference
    /// serves the whole pull. A host without the `resolve` capability only
    /// serves references by digest (as in containerd: it is not trusted to
    /// map a tag to a digest). Authentication failures are final.
    pub async fn fetch(&self, endpoints: &[Endpoint], r: &Reference) -> Result<Fetched> {
        let mut last = Error::not_found(format!("no endpoint for {}", r.domain));
        let usable = |e: &&Endpoint| e.pull && (e.resolve || r.digest.is_some());
        for ep in endpoints.iter().filter(usable) {
            tracing::debug!(host = %ep.host, image = %r.full(), "trying registry endpoint");
            match self.fetch_from(ep, r).await {
                Ok(f) => return Ok(f),
                Err(e @ Error::Unauthenticated(_)) if !ep.host.eq(&r.domain) => {
                    tracing::warn!(host = %ep.host, "mirror refused credentials: {e}");
                    last = e;
                }
                Err(e @ (Error::Unauthenticated(_) | Error::InvalidArgument(_))) => return Err(e),
                Err(e) => {
                    tracing::warn!(host = %ep.host, image = %r.full(), "endpoint failed: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn fetch_from(&self, ep: &Endpoint, r: &Reference) -> Result<Fetched> {
        let client = RegistryClient::new(ep, &r.path, self.credentials.clone())?;
        let reference = r
            .digest
            .as_ref()
            .or(r.tag.as_ref())
            .ok_or_else(|| Error::invalid("reference has neither tag nor digest"))?;
        let (data, digest) = self
            .timed("resolve", async {
                client
                    .manifest(reference, manifest::ACCEPTED)
                    .await
                    .map_err(|e| e.context(&format!("resolve {}", r.full())))
            })
            .await?;
        let computed = manifest::sha256_digest(&data);
        if let Some(d) = &r.digest {
            if *d != computed {
                return Err(Error::invalid(format!("manifest digest {computed} != {d}")));
            }
        } else if digest.as_ref().is_some_and(|d| *d != computed) {
            return Err(Error::internal(format!(
                "registry sent {computed}, said {}",
                digest.unwrap_or_default()
            )));
        }
        let target = Desc {
            media_type: manifest::media_type_of(&data)?,
            digest: computed,
            size: data.len() as i64,
            platform: None,
        };
        tracing::info!(image = %r.full(), digest = %target.digest, host = %ep.host, "resolved");
        let (manifest_desc, manifest_data, index_data) =
            match manifest::parse(&target.media_type, &data)? {
                Parsed::Manifest(_) => (target.clone(), data, None),
                Parsed::Index(idx) => {
                    let d = manifest::select_platform(&idx)?;
                    let (m, _) = self
                        .timed("manifest", async {
                            client
                                .manifest(&d.digest, manifest::ACCEPTED)
                                .await
                                .map_err(|e| e.context("fetch manifest"))
                        })
                        .await?;
                    if manifest::sha256_digest(&m) != d.digest {
                        return Err(Error::internal(format!("manifest {} corrupt", d.digest)));
                    }
                    (d, m, Some(data))
                }
            };
        let m = match manifest::parse(&manifest_desc.media_type, &manifest_data)? {
            Parsed::Manifest(m) => m,
            Parsed::Index(_) => return Err(Error::invalid("nested index")),
        };
        // The config first (small, parsed for the diff ids), then the layers.
        let config = self.blob_to_memory(&client, &m.config).await?;
        let (_, diff_ids) = manifest::parse_config(&config)?;
        if diff_ids.len() != m.layers.len() {
            return Err(Error::invalid("config diff_ids do not match the layers"));
        }
        let chains = manifest::chain_ids(&diff_ids);
        let top = chains.last().cloned().unwrap_or_default();
        let cd = self.containerd;
        cd.write_content(
            &format!("config-{}", m.config.digest),
            &m.config.digest,
            config.clone(),
            manifest::config_labels(cd.snapshotter(), &top),
        )
        .await?;
        cd.update_content_labels(
            &m.config.digest,
            manifest::config_labels(cd.snapshotter(), &top),
        )
        .await?;
        let mut unpacker = Unpacker::new(cd, &m.layers, &diff_ids).await?;
        self.store_and_unpack(&client, &m.layers, &diff_ids, &mut unpacker)
            .await?;
        let labels = manifest::manifest_labels(&m);
        cd.write_content(
            &format!("manifest-{}", manifest_desc.digest),
            &manifest_desc.digest,
            manifest_data,
            labels.clone(),
        )
        .await?;
        cd.update_content_labels(&manifest_desc.digest, labels)
            .await?;
        if let Some(index) = index_data {
            let labels = manifest::index_labels(&[&manifest_desc.digest]);
            cd.write_content(
                &format!("index-{}", target.digest),
                &target.digest,
                index,
                labels.clone(),
            )
            .await?;
            cd.update_content_labels(&target.digest, labels).await?;
        }
        Ok(Fetched {
            target,
            manifest: m,
        })
    }

    async fn blob_to_memory(&self, client: &RegistryClient, desc: &Desc) -> Result<Vec<u8>> {
        let limit = usize::try_from(desc.size).unwrap_or(0).min(MAX_CONFIG);
        let out = self
            .timed("config", async {
                client
                    .blob_bytes(&desc.digest, limit)
                    .await
                    .map_err(|e| e.context("fetch config"))
            })
            .await?;
        if manifest::sha256_digest(&out) != desc.digest {
            return Err(Error::internal(format!("blob {} corrupt", desc.digest)));
        }
        Ok(out)
    }

    /// Download the layers, at most `max_downloads` at once, and unpack each
    /// as soon as it and every layer below it are stored, while later layers
    /// still download (containerd's own pull does the same). The first
    /// failure on either side stops the other: downloads in flight abort
    /// their ingests, and no further layer is unpacked.
    async fn store_and_unpack(
        &self,
        client: &RegistryClient,
        layers: &[Desc],
        diff_ids: &[String],
        unpacker: &mut Unpacker<'_>,
    ) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (stored_tx, mut stored_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let downloads = async {
            // Futures built up front (not in a `map` closure): a closure over
            // borrowed layers makes the spawned pull not provably `Send`.
            let mut jobs = Vec::with_capacity(layers.len());
            for (i, (layer, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
                let stop = stop_rx.clone();
                jobs.push(Box::pin(async move {
                    self.blob_to_store(client, layer, diff_id, stop)
                        .await
                        .map(|()| i)
                }));
            }
            let mut done = futures::stream::iter(jobs).buffer_unordered(self.max_downloads);
            let mut failed = None;
            // Drain every download, even after a failure: the ones in flight
            // see the stop and abort their ingests.
            while let Some(r) = done.next().await {
                match r {
                    Ok(i) => {
                        let _ = stored_tx.send(i);
                    }
                    Err(e) => {
                        if failed.is_none() {
                            stop_tx.send_replace(true);
                            failed = Some(e);
                        }
                    }
                }
            }
            drop(stored_tx);
            failed.map_or(Ok(()), Err)
        };
        let unpacks = async {
            let mut stored = vec![false; layers.len()];
            while !unpacker.done() {
                // `None`: the downloads ended without every layer (they failed).
                let Some(i) = stored_rx.recv().await else {
                    return Ok(());
                };
                stored[i] = true;
                while !unpacker.done() && stored[unpacker.next()] && !*stop_rx.borrow() {
                    if let Err(e) = unpacker.apply_next().await {
                        stop_tx.send_replace(true);
                        return Err(e);
                    }
                }
            }
            Ok(())
        };
        let (downloaded, unpacked) = futures::join!(downloads, unpacks);
        // An unpack failure stopped the downloads: it is the cause.
        unpacked?;
        downloaded?;
        if !unpacker.done() {
            return Err(Error::internal("layers stored but not all unpacked"));
        }
        Ok(())
    }

    /// Stream one layer into the content store, verifying size and digest,
    /// unless it is there already. Returns early (aborting the ingest) once
    /// `stop` turns true.
    async fn blob_to_store(
        &self,
        client: &RegistryClient,
        layer: &Desc,
        diff_id: &str,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        if *stop.borrow() {
            return Err(stopped());
        }
        let cd = self.containerd;
        let labels = manifest::layer_labels(diff_id);
        let ingest = format!("layer-{}", layer.digest);
        let _layer = self.layers.lock(&layer.digest, &mut stop).await?;
        let Some(mut writer) = self.open_writer(&ingest, layer, &mut stop).await? else {
            return cd.update_content_labels(&layer.digest, labels).await;
        };
        let result = async {
            // containerd hashes what it stores and refuses a commit whose
            // digest or size differs from the manifest's: that is the
            // verification, so the bytes are not hashed here as well. The
            // range request also resumes an ingest an interrupted pull left.
            let from = writer.resumable();
            // Every byte is there: another namespace has the blob (containerd
            // shares content between namespaces and reports it as a complete
            // ingest), or an interrupted pull wrote it all. Commit only.
            if from == layer.size {
                writer.resume_at(from);
                return Ok(Stored::Complete);
            }
            // Straight into containerd's store, unless an interrupted
            // streamed pull left bytes to resume.
            if from == 0 {
                if let Some(local) = self.direct.store(cd).await {
                    let reference = format!("{ingest}-local");
                    if self
                        .store_directly(client, layer, local, &reference, labels.clone(), &mut stop)
                        .await?
                    {
                        return Ok(Stored::Directly);
                    }
                }
            }
            let blob = self
                .timed("layer", async {
                    client
                        .blob(&layer.digest, from as u64)
                        .await
                        .map_err(|e| e.context("fetch layer"))
                })
                .await?;
            // A registry that ignored the range sends it all: start over.
            let mut body = LayerBytes::new(layer, blob.response, blob.offset as i64);
            writer.resume_at(body.received);
            if body.received > 0 {
                tracing::debug!(layer = %layer.digest, bytes = body.received, "resuming an interrupted download");
            }
            while let Some(chunk) = body.next(self, &mut stop).await? {
                writer.write(&chunk).await?;
            }
            Ok(Stored::Streamed)
        }
        .await;
        match result {
            Ok(Stored::Directly) => {
                // Recorded under its own ref: the streamed ingest, opened to
                // hold the layer's ref, is not needed.
                writer.abort().await;
                crate::metrics::global().observe_layer_stored("direct");
                tracing::debug!(layer = %layer.digest, bytes = layer.size, "layer stored directly");
                Ok(())
            }
            Ok(stored @ (Stored::Streamed | Stored::Complete)) => {
                if let Err(e) = writer.commit(layer.size, &layer.digest, labels).await {
                    // A refused commit leaves the ingest: drop it.
                    let _ = cd.abort_ingest(&ingest).await;
                    return Err(corrupt_or(e, &layer.digest));
                }
                if matches!(stored, Stored::Streamed) {
                    crate::metrics::global().observe_layer_stored("streamed");
                    tracing::debug!(layer = %layer.digest, bytes = layer.size, "layer stored");
                } else {
                    // Written by another namespace's pull, or by a concurrent
                    // pull's direct write in this one: nothing downloaded.
                    tracing::debug!(layer = %layer.digest, "layer already in containerd's store; recorded");
                }
                Ok(())
            }
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }

    /// Download `layer` into containerd's local content store (see
    /// `containerd::LocalContentStore`) and record it in the namespace under
    /// `reference`. `false`: containerd did not see the stored blob, nothing
    /// is recorded, and the caller streams the layer instead.
    async fn store_directly(
        &self,
        client: &RegistryClient,
        layer: &Desc,
        local: &LocalContentStore,
        reference: &str,
        labels: HashMap<String, String>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool> {
        let cd = self.containerd;
        let mut staged = match local.stage(&layer.digest, layer.size) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(layer = %layer.digest, "cannot stage the layer ({e}); streaming it");
                return Ok(false);
            }
        };
        let blob = self
            .timed("layer", async {
                client
                    .blob(&layer.digest, 0)
                    .await
                    .map_err(|e| e.context("fetch layer"))
            })
            .await?;
        // Hashing and writing on a blocking thread, fed as bytes arrive.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(SINK_QUEUE);
        let sink = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                staged.write(&chunk)?;
            }
            Ok::<_, Error>(staged)
        });
        // The network hands over a few KiB at a time: batch them, so the
        // writer thread wakes once per `SINK_BATCH`.
        let downloaded = async {
            let mut body = LayerBytes::new(layer, blob.response, 0);
            let fresh = || bytes::BytesMut::with_capacity(SINK_BATCH + (64 << 10));
            let mut batch = fresh();
            while let Some(chunk) = body.next(self, stop).await? {
                batch.extend_from_slice(&chunk);
                if batch.len() >= SINK_BATCH {
                    let full = std::mem::replace(&mut batch, fresh());
                    // The sink stops at the first failed write: its error
                    // says why.
                    if tx.send(full.freeze()).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch.freeze()).await;
            }
            Ok(())
        }
        .await;
        drop(tx);
        let staged = sink
            .await
            .map_err(|e| Error::internal(format!("layer writer: {e}")))?;
        // A failed download drops the staged file (and its bytes).
        downloaded?;
        let staged = staged?;
        let published = tokio::task::spawn_blocking(move || staged.publish())
            .await
            .map_err(|e| Error::internal(format!("layer writer: {e}")))??;
        let path = match published {
            Published::At(path) => path,
            Published::NotMoved(e) => {
                tracing::warn!(
                    "cannot move layers into containerd's content store ({e}); streaming layers to it from now on"
                );
                self.direct.turn_off();
                return Ok(false);
            }
        };
        if cd
            .commit_present_blob(reference, &layer.digest, layer.size, labels)
            .await?
        {
            return Ok(true);
        }
        if path.exists() {
            // containerd looks at another directory than the one crid wrote
            // to, or no longer shares content between namespaces. Stream
            // from now on. The file stays: with an `isolated` policy it may
            // be another namespace's blob, which the rename replaced with
            // the same bytes.
            tracing::warn!(
                path = %path.display(),
                "containerd does not see the blobs crid writes to its content store; streaming layers to it from now on"
            );
            self.direct.turn_off();
        } else {
            // containerd's garbage collector took the blob before it was
            // recorded (it was in no namespace yet).
            tracing::debug!(layer = %layer.digest, "stored blob collected before its commit; streaming it");
        }
        Ok(false)
    }

    /// A writer for `layer` under ingest ref `ingest`; `None` when the blob
    /// is in the store already (it is then leased). The ref is per digest, so a concurrent pull
    /// of another image with the same layer holds it locked: wait for that
    /// download (the blob then appears) rather than fail, as containerd's
    /// own fetcher does.
    async fn open_writer(
        &self,
        ingest: &str,
        layer: &Desc,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<crate::containerd::BlobWriter>> {
        let cd = self.containerd;
        let mut backoff = Duration::from_millis(50);
        let mut idle = Duration::ZERO;
        let mut last_offset = None;
        loop {
            // A blob in the store already answers `None`, and containerd puts
            // it under the pull's lease (a `Content.Info` check would not:
            // an unreferenced blob could go before the manifest refers to it).
            match cd.blob_writer(ingest, layer.size, &layer.digest).await {
                Err(e) if is_locked(&e) && idle < self.progress_timeout => {
                    let offset = cd.ingest_offset(ingest).await?;
                    if offset != last_offset {
                        if last_offset.is_none() {
                            tracing::debug!(layer = %layer.digest, "layer being stored by another process; waiting");
                        }
                        last_offset = offset;
                        idle = Duration::ZERO;
                    }
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => return Err(stopped()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    idle += backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                r => return r,
            }
        }
    }
}

/// A layer's bytes as the registry sends them, with what every download
/// checks on the way: the pull's stop, the no-progress timeout, no more
/// bytes than the manifest gives (and all of them by the end), and a
/// progress line every 16 MiB.
struct LayerBytes<'l> {
    layer: &'l Desc,
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    /// Bytes of the layer received so far, counting from `offset`.
    received: i64,
    logged: i64,
}

impl<'l> LayerBytes<'l> {
    /// The response's body, which starts `offset` bytes into the layer.
    fn new(layer: &'l Desc, response: reqwest::Response, offset: i64) -> Self {
        LayerBytes {
            layer,
            stream: Box::pin(response.bytes_stream()),
            received: offset,
            logged: 0,
        }
    }

    /// The next chunk; `None` once the whole layer has arrived.
    async fn next(
        &mut self,
        puller: &Puller<'_>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<bytes::Bytes>> {
        let layer = self.layer;
        let chunk = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return Err(stopped()),
            c = puller.timed("layer", async { Ok(self.stream.next().await) }) => c?,
        };
        let Some(chunk) = chunk else {
            if self.received != layer.size {
                return Err(Error::Unavailable(format!(
                    "download {}: ended after {} of {} bytes",
                    layer.digest, self.received, layer.size
                )));
            }
            return Ok(None);
        };
        let chunk =
            chunk.map_err(|e| Error::Unavailable(format!("download {}: {e}", layer.digest)))?;
        self.received += chunk.len() as i64;
        if self.received > layer.size {
            return Err(Error::internal(format!(
                "layer {} corrupt: more than the {} bytes of the manifest",
                layer.digest, layer.size
            )));
        }
        if self.received >= self.logged + (16 << 20) {
            self.logged = self.received;
            tracing::info!(layer = %layer.digest, bytes = self.received, total = layer.size, "pulling");
        }
        Ok(Some(chunk))
    }
}

/// Where a layer went.
enum Stored {
    /// Streamed into the ingest: commit it.
    Streamed,
    /// Complete in the ingest already (another namespace has the blob, or
    /// an interrupted pull wrote it all): commit it.
    Complete,
    /// Into containerd's store directly, and recorded.
    Directly,
}

/// containerd refuses a commit whose content does not hash to the expected
/// digest with FailedPrecondition: name that as a corrupt layer.
fn corrupt_or(e: Error, digest: &str) -> Error {
    match &e {
        Error::Containerd { status, .. } if status.code() == tonic::Code::FailedPrecondition => {
            Error::internal(format!(
                "layer {digest} corrupt: the downloaded bytes do not match its digest ({})",
                status.message()
            ))
        }
        _ => e,
    }
}

/// containerd's answer when another writer holds an ingest ref.
fn is_locked(e: &Error) -> bool {
    matches!(e, Error::Containerd { status, .. }
        if status.code() == tonic::Code::Unavailable && status.message().contains("locked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_containerds_order() {
        let a = |f: fn(&mut RegistryAuth)| {
            let mut r = RegistryAuth::default();
            f(&mut r);
            credentials(Some(&r)).unwrap()
        };
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(credentials(None).unwrap(), Credentials::Anonymous);
        assert_eq!(
            a(|r| {
                r.registry_token = "rt".into();
                r.username = "u".into();
            }),
            Credentials::RegistryToken("rt".into())
        );
        assert_eq!(
            a(|r| {
                r.username = "u".into();
                r.password = "p".into();
                r.identity_token = "it".into();
            }),
            basic("u", "p")
        );
        assert_eq!(
            a(|r| {
                r.identity_token = "it".into();
                r.auth = "dTpw".into(); // u:p
            }),
            Credentials::IdentityToken("it".into())
        );
        assert_eq!(a(|r| r.auth = "dTpw".into()), basic("u", "p"));
        assert!(matches!(
            credentials(Some(&RegistryAuth {
                auth: "no colon".into(),
                ..Default::default()
            })),
            Err(Error::InvalidArgument(_))
        ));
    }
}
