//! Containers, the model: the store and its records, the OCI spec from CRI
//! config (`spec/`, pure), seccomp, CDI devices, image users, rootfs mounts
//! and idmapped mounts, FIFO stdio. The RPCs that create, start, stop and
//! update containers are in `runtime/container_*.rs`; nothing here imports
//! `runtime`.

pub mod cdi;
pub(crate) mod fifo_stdio;
pub mod idmap_mounts;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod store;
pub mod user_files;

pub use store::{Container, ContainerMetadata, ContainerState, ContainerStatus, ContainerStore};
