//! crid-bench: drives CRI endpoints the way kubelet does and dockerd the way
//! dockershim did, and reports latency percentiles, CPU and memory of each
//! runtime process. `main.rs` is the command line; this library holds the
//! parts worth testing (statistics, SVG) and the drivers. It uses crid's
//! library only for what crid itself serves or shares: the CRI bindings, the
//! Docker Engine client, CNI, and the unix-socket gRPC dialer.

pub mod backend;
pub mod cold;
pub mod floor;
pub mod procstat;
pub mod pull;
pub mod report;
pub mod stats;
pub mod svg;
pub mod workload;
