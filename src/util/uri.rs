//! Percent-encoding for the URIs crid builds (log driver `binary://` URIs,
//! Docker API query strings in the benchmark): shared with crid's shim in
//! the `cri-log` crate, with the log URI itself (`cri_log::uri::LogUri`).

pub use cri_log::uri::percent_encode;
