//! containerd `Content` service: blobs (manifests, configs, layers) by digest.

use super::{api, Containerd};
use crate::error::{Error, Result};
use api::content_client::ContentClient;
pub use api::Info as ContentInfo;
use futures::StreamExt;
use std::collections::HashMap;

/// Largest chunk sent in one `Content.Write` message.
pub const WRITE_CHUNK: usize = 1 << 20;

impl Containerd {
    pub(crate) fn content(&self) -> ContentClient<super::Svc> {
        ContentClient::new(self.svc())
    }

    /// Info of a blob, `None` when the store does not have it.
    pub async fn content_info(&self, digest: &str) -> Result<Option<ContentInfo>> {
        match self
            .content()
            .info(api::InfoRequest {
                digest: digest.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().info),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::containerd("Content.Info", s)),
        }
    }

    /// Read a whole (small) blob: manifests, indexes, configs.
    pub async fn read_content(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self
            .content()
            .read(api::ReadContentRequest {
                digest: digest.into(),
                offset: 0,
                size: 0,
            })
            .await
            .map_err(|s| Error::containerd("Content.Read", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(
                &chunk
                    .map_err(|s| Error::containerd("Content.Read", s))?
                    .data,
            );
        }
        Ok(out)
    }

    /// Set labels on a blob (GC references); `paths` names the labels replaced.
    pub async fn update_content_labels(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.content()
            .update(api::UpdateRequest {
                info: Some(ContentInfo {
                    digest: digest.into(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            })
            .await
            .map_err(|s| Error::containerd("Content.Update", s))?;
        Ok(())
    }

    /// Write a blob held in memory (small blobs: configs, manifests, the
    /// built-in pause layer). An existing blob is success.
    pub async fn write_content(
        &self,
        reference: &str,
        digest: &str,
        data: Vec<u8>,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let total = data.len() as i64;
        let mut msgs = vec![api::WriteContentRequest {
            action: api::WriteAction::Stat as i32,
            r#ref: reference.into(),
            total,
            expected: digest.into(),
            ..Default::default()
        }];
        let mut offset = 0i64;
        for chunk in data.chunks(WRITE_CHUNK) {
            msgs.push(api::WriteContentRequest {
                action: api::WriteAction::Write as i32,
                r#ref: reference.into(),
                offset,
                data: chunk.to_vec(),
                ..Default::default()
            });
            offset += chunk.len() as i64;
        }
        msgs.push(api::WriteContentRequest {
            action: api::WriteAction::Commit as i32,
            r#ref: reference.into(),
            total,
            offset,
            expected: digest.into(),
            labels,
            ..Default::default()
        });
        match self.content().write(futures::stream::iter(msgs)).await {
            Ok(resp) => {
                let mut s = resp.into_inner();
                while let Some(m) = s.next().await {
                    match m {
                        Ok(_) => {}
                        Err(st) if st.code() == tonic::Code::AlreadyExists => return Ok(()),
                        Err(st) => return Err(Error::containerd("Content.Write", st)),
                    }
                }
                Ok(())
            }
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(Error::containerd("Content.Write", s)),
        }
    }
}

/// A streaming `Content.Write`: chunks go out as they come (buffered up to
/// `WRITE_CHUNK`), so a layer is never held whole in memory. Dropping it
/// without `commit` leaves an ingest that `abort` (or containerd's GC) removes.
pub struct BlobWriter {
    containerd: Containerd,
    reference: String,
    tx: tokio::sync::mpsc::Sender<api::WriteContentRequest>,
    responses: tonic::Streaming<api::WriteContentResponse>,
    buf: Vec<u8>,
    offset: i64,
    /// Bytes an earlier, interrupted writer left in the ingest.
    resumable: i64,
}

impl Containerd {
    /// Open a writer for blob `expected` of `total` bytes under ingest ref
    /// `reference`; `None` when the store already has the blob.
    pub async fn blob_writer(
        &self,
        reference: &str,
        total: i64,
        expected: &str,
    ) -> Result<Option<BlobWriter>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(api::WriteContentRequest {
            action: api::WriteAction::Stat as i32,
            r#ref: reference.into(),
            total,
            expected: expected.into(),
            ..Default::default()
        })
        .await
        .map_err(|_| Error::internal("blob writer channel closed"))?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut responses = match self.content().write(stream).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(None),
            Err(s) => return Err(Error::containerd("Content.Write", s)),
        };
        let resumable = match responses.next().await {
            Some(Ok(r)) => r.offset,
            Some(Err(s)) if s.code() == tonic::Code::AlreadyExists => return Ok(None),
            Some(Err(s)) => return Err(Error::containerd("Content.Write", s)),
            None => return Err(Error::internal("Content.Write closed after STAT")),
        };
        Ok(Some(BlobWriter {
            containerd: self.clone(),
            reference: reference.into(),
            tx,
            responses,
            buf: Vec::with_capacity(WRITE_CHUNK),
            offset: 0,
            resumable: resumable.max(0),
        }))
    }

    /// Bytes written so far to the ingest `reference`; `None` when there is
    /// no such ingest.
    pub async fn ingest_offset(&self, reference: &str) -> Result<Option<i64>> {
        match self
            .content()
            .status(api::StatusRequest {
                r#ref: reference.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().status.map(|s| s.offset)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::containerd("Content.Status", s)),
        }
    }

    /// Drop an unfinished ingest; a missing one is fine.
    pub async fn abort_ingest(&self, reference: &str) -> Result<()> {
        match self
            .content()
            .abort(api::AbortRequest {
                r#ref: reference.into(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Content.Abort", s)),
        }
    }

    /// Delete a blob; a missing one is fine.
    pub async fn delete_content(&self, digest: &str) -> Result<()> {
        match self
            .content()
            .delete(api::DeleteContentRequest {
                digest: digest.into(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Content.Delete", s)),
        }
    }
}

impl BlobWriter {
    /// Bytes already in the ingest from an interrupted earlier writer; the
    /// caller may `resume_at` them instead of writing from the start.
    pub fn resumable(&self) -> i64 {
        self.resumable
    }

    /// Continue after the first `offset` bytes (0 or `resumable()`); writing
    /// from 0 over a partial ingest truncates it.
    pub fn resume_at(&mut self, offset: i64) {
        self.offset = if offset == self.resumable { offset } else { 0 };
    }

    async fn send(&mut self, req: api::WriteContentRequest) -> Result<()> {
        self.tx
            .send(req)
            .await
            .map_err(|_| Error::internal("Content.Write stream closed"))?;
        match self.responses.next().await {
            Some(Ok(_)) => Ok(()),
            Some(Err(s)) => Err(Error::containerd("Content.Write", s)),
            None => Err(Error::internal("Content.Write ended early")),
        }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_CHUNK));
        let len = data.len() as i64;
        let req = api::WriteContentRequest {
            action: api::WriteAction::Write as i32,
            r#ref: self.reference.clone(),
            offset: self.offset,
            data,
            ..Default::default()
        };
        self.send(req).await?;
        self.offset += len;
        Ok(())
    }

    pub async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = (WRITE_CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() >= WRITE_CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Flush and commit; containerd verifies size and digest. A blob that
    /// appeared meanwhile (a concurrent writer) is success.
    pub async fn commit(
        mut self,
        total: i64,
        expected: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        self.flush().await?;
        let req = api::WriteContentRequest {
            action: api::WriteAction::Commit as i32,
            r#ref: self.reference.clone(),
            offset: self.offset,
            total,
            expected: expected.into(),
            labels,
            ..Default::default()
        };
        match self.send(req).await {
            Err(e) if e.is_already_exists() => Ok(()),
            r => r,
        }
    }

    /// Give up: close the stream and drop the ingest.
    pub async fn abort(self) {
        let BlobWriter {
            containerd,
            reference,
            tx,
            ..
        } = self;
        drop(tx);
        let _ = containerd.abort_ingest(&reference).await;
    }
}
