//! containerd `Images` service (the image store: name → target descriptor).

use super::{api, Containerd};
use crate::error::{Error, Result};
use api::images_client::ImagesClient;
pub use api::Image;

impl Containerd {
    fn images(&self) -> ImagesClient<super::Svc> {
        ImagesClient::new(self.svc())
    }

    /// The image record named `name`, `None` when absent.
    pub async fn get_image(&self, name: &str) -> Result<Option<Image>> {
        match self
            .images()
            .get(api::GetImageRequest { name: name.into() })
            .await
        {
            Ok(r) => Ok(r.into_inner().image),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::containerd("Images.Get", s)),
        }
    }

    pub async fn list_images(&self, filters: Vec<String>) -> Result<Vec<Image>> {
        let resp = self
            .images()
            .list(api::ListImagesRequest { filters })
            .await
            .map_err(|s| Error::containerd("Images.List", s))?;
        Ok(resp.into_inner().images)
    }

    /// Create the record, or update its target and labels when it exists.
    pub async fn put_image(&self, image: Image) -> Result<Image> {
        match self
            .images()
            .create(api::CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            })
            .await
        {
            Ok(r) => r
                .into_inner()
                .image
                .ok_or_else(|| Error::internal("Images.Create returned no image")),
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                let r = self
                    .images()
                    .update(api::UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    })
                    .await
                    .map_err(|s| Error::containerd("Images.Update", s))?;
                r.into_inner()
                    .image
                    .ok_or_else(|| Error::internal("Images.Update returned no image"))
            }
            Err(s) => Err(Error::containerd("Images.Create", s)),
        }
    }

    /// Delete the record (GC collects what it alone referenced); missing is fine.
    pub async fn delete_image(&self, name: &str) -> Result<()> {
        match self
            .images()
            .delete(api::DeleteImageRequest {
                name: name.into(),
                sync: false,
                target: None,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Images.Delete", s)),
        }
    }
}
