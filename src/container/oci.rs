//! Gathers what a container's spec needs (sandbox facts, the image's
//! /etc/passwd and /etc/group, device nodes) and calls the pure generator.

use super::store::ContainerMetadata;
use crate::cri::PodSandboxConfig;
use crate::error::{Error, Result};
use crate::image::ImageRecord;
use crate::runtime::Runtime;
use crate::sandbox::Sandbox;

impl Runtime {
    pub(crate) async fn container_spec(
        &self,
        meta: &ContainerMetadata,
        sandbox: &Sandbox,
        sandbox_config: &PodSandboxConfig,
        image: &ImageRecord,
    ) -> Result<oci_spec::runtime::Spec> {
        let _ = (meta, sandbox, sandbox_config, image);
        Err(Error::Unimplemented("container spec".into()))
    }
}
