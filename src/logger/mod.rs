//! The CRI container log format and the crid-logger control protocol live in
//! the `cri-log` crate (crates/cri-log), shared with crid-logger and crid's
//! shim; crid uses its control-socket clients (reopen, attach).

pub use cri_log::*;
