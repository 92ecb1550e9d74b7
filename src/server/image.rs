//! CRI `ImageService`: translation between CRI messages and `image::`.

use super::list_stream::{in_batches, ListStream};
use crate::cri::image_service_server::ImageService;
use crate::cri::*;
use crate::image::{image_user, ImageRecord, RegistryAuth};
use crate::runtime::Runtime;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ImageServer {
    runtime: Arc<Runtime>,
}

impl ImageServer {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        ImageServer { runtime }
    }

    async fn images(&self, filter: Option<ImageFilter>) -> crate::Result<Vec<Image>> {
        let filter = filter.and_then(|f| f.image).map(|s| s.image);
        let images = self.runtime.images.list(filter.as_deref()).await?;
        Ok(images.iter().map(to_cri).collect())
    }
}

fn image_name(spec: Option<&ImageSpec>) -> Result<&str, Status> {
    match spec.map(|s| s.image.as_str()) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(Status::invalid_argument("image.image is empty")),
    }
}

fn to_cri(r: &ImageRecord) -> Image {
    let (uid, username) = image_user(&r.config);
    Image {
        id: r.id.clone(),
        repo_tags: r.repo_tags.clone(),
        repo_digests: r.repo_digests.clone(),
        size: r.size,
        uid: uid.map(|value| Int64Value { value }),
        username,
        spec: Some(ImageSpec {
            image: r.id.clone(),
            ..Default::default()
        }),
        pinned: r.pinned,
    }
}

fn to_auth(a: &AuthConfig) -> RegistryAuth {
    RegistryAuth {
        username: a.username.clone(),
        password: a.password.clone(),
        auth: a.auth.clone(),
        identity_token: a.identity_token.clone(),
        registry_token: a.registry_token.clone(),
        server_address: a.server_address.clone(),
    }
}

#[tonic::async_trait]
impl ImageService for ImageServer {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let images = self.images(request.into_inner().filter).await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    type StreamImagesStream = ListStream<StreamImagesResponse>;

    async fn stream_images(
        &self,
        request: Request<StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let images = self.images(request.into_inner().filter).await?;
        Ok(Response::new(in_batches(images, |images| {
            StreamImagesResponse { images }
        })))
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let req = request.into_inner();
        let name = image_name(req.image.as_ref())?;
        let Some(rec) = self.runtime.images.status(name).await? else {
            return Ok(Response::new(ImageStatusResponse::default()));
        };
        let mut info = HashMap::new();
        if req.verbose {
            let v = serde_json::json!({
                "id": rec.id,
                "chainID": rec.chain_id,
                "imageSpec": rec.config,
                "pinned": rec.pinned,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(Response::new(ImageStatusResponse {
            image: Some(to_cri(&rec)),
            info,
        }))
    }

    async fn pull_image(
        &self,
        request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let req = request.into_inner();
        let name = image_name(req.image.as_ref())?;
        let auth = req.auth.as_ref().map(to_auth);
        let t = std::time::Instant::now();
        let pulled = self.runtime.images.pull(name, auth.as_ref()).await;
        let size = match &pulled {
            Ok(id) => self.runtime.images.resolve(id).await.map_or(0, |i| i.size),
            Err(_) => 0,
        };
        crate::metrics::global().observe_pull(pulled.is_ok(), t.elapsed(), size);
        Ok(Response::new(PullImageResponse { image_ref: pulled? }))
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let req = request.into_inner();
        let name = image_name(req.image.as_ref())?;
        self.runtime.images.remove(name).await?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let u = self.runtime.images.fs_info().await?;
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![FilesystemUsage {
                timestamp: u.timestamp_nanos,
                fs_id: Some(FilesystemIdentifier {
                    mountpoint: u.mountpoint,
                }),
                used_bytes: Some(UInt64Value {
                    value: u.used_bytes,
                }),
                inodes_used: Some(UInt64Value {
                    value: u.inodes_used,
                }),
            }],
            ..Default::default()
        }))
    }
}
