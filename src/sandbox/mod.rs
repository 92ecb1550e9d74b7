//! Pod sandboxes, the model: the store and its records, the pause
//! container's OCI spec, the pod's files (hosts, resolv.conf, /dev/shm) and
//! recorded resources. The RPCs that run, stop and remove a pod are in
//! `runtime/sandbox_*.rs`; nothing here imports `runtime`.

pub mod files;
pub mod pod;
pub mod resources;
pub mod spec;
pub mod store;

pub use store::{Sandbox, SandboxMetadata, SandboxState, SandboxStatus, SandboxStore};
