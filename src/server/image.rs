//! CRI `ImageService`: translation between CRI messages and `image::`.

use super::unimplemented;
use crate::cri::image_service_server::ImageService;
use crate::cri::*;
use crate::runtime::Runtime;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ImageServer {
    #[allow(dead_code)]
    runtime: Arc<Runtime>,
}

impl ImageServer {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        ImageServer { runtime }
    }
}

#[tonic::async_trait]
impl ImageService for ImageServer {
    async fn list_images(
        &self,
        _request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        unimplemented("ListImages")
    }

    async fn image_status(
        &self,
        _request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        unimplemented("ImageStatus")
    }

    async fn pull_image(
        &self,
        _request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        unimplemented("PullImage")
    }

    async fn remove_image(
        &self,
        _request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        unimplemented("RemoveImage")
    }

    async fn image_fs_info(
        &self,
        _request: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        unimplemented("ImageFsInfo")
    }
}
