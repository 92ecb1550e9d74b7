//! Containers: OCI spec from CRI config, lifecycle, logs, exits.

pub mod cdi;
pub(crate) mod fifo_stdio;
pub mod idmap_mounts;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod store;
pub mod user_files;

pub use store::{Container, ContainerMetadata, ContainerState, ContainerStatus, ContainerStore};
