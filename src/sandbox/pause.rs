//! Gathers what the pause container's spec needs (node facts, sandbox files)
//! and calls the pure spec generator.

use super::files::SandboxFiles;
use super::store::SandboxMetadata;
use crate::error::{Error, Result};
use crate::image::ImageRecord;
use crate::runtime::Runtime;

pub(crate) fn pause_spec(
    rt: &Runtime,
    meta: &SandboxMetadata,
    image: &ImageRecord,
    files: &SandboxFiles,
) -> Result<oci_spec::runtime::Spec> {
    let _ = (rt, meta, image, files);
    Err(Error::Unimplemented("pause spec".into()))
}
