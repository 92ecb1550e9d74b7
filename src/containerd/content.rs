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
