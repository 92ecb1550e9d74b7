//! Pod networking: network namespaces pinned by bind mount (`netns`) and the
//! CNI executor (`cni`). Knows nothing of containerd or gRPC.

pub mod cni;
pub mod netns;
pub mod userns;
