//! crid-bench: drives CRI endpoints the way kubelet does and dockerd the way
//! dockershim did, and reports latency percentiles, CPU and memory of each
//! runtime process. `src/bin/crid-bench.rs` is the command line; this module
//! holds the parts worth testing (statistics, SVG) and the drivers.

pub mod backend;
pub mod cold;
pub mod floor;
pub mod procstat;
pub mod pull;
pub mod report;
pub mod stats;
pub mod svg;
pub mod workload;
