//! CRI's vocabulary, before any domain sees it: the CRI v1 bindings crid
//! serves and its tests and tools call (the `cri-api` crate, crates/cri-api,
//! generated from proto/runtime/v1/api.proto, CRI of Kubernetes 1.36),
//! re-exported so `crid::cri::X` names them; the checks of their fields
//! (`validate`) and the translation of stop signals (`signal`). Pure: no
//! I/O, no domain, no containerd.

pub use cri_api::*;

pub mod signal;
pub mod validate;
