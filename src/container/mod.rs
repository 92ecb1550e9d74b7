//! Containers: OCI spec from CRI config, lifecycle, logs, exits.

pub mod cdi;
pub mod create;
pub(crate) mod fifo_stdio;
pub mod idmap_mounts;
pub(crate) mod image_volume;
pub mod lifecycle;
pub mod oci;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod store;
pub mod update;
pub mod user_files;

pub use store::{Container, ContainerMetadata, ContainerState, ContainerStatus, ContainerStore};
