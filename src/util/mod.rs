//! Small helpers that no domain owns and every layer may use: atomic state
//! files (`persist`), node facts (`platform`: capabilities, cgroup
//! controllers, cgroup usage), the id index and name reservations both
//! stores are built on, CRI timestamps, percent-encoding and the unix-socket
//! gRPC dialer (containerd, crid's socket for cridctl, the benchmark and
//! tests). Nothing here imports a domain, the runtime root or the gRPC edge.

pub mod index;
pub mod names;
pub mod persist;
pub mod platform;
pub mod time;
pub mod unix_grpc;
pub mod uri;
