//! The CRI v1 bindings crid serves and its tests and tools call: the
//! `cri-api` crate (crates/cri-api, generated from proto/runtime/v1/api.proto,
//! CRI of Kubernetes 1.36), re-exported so `crid::cri::X` names them.

pub use cri_api::*;
