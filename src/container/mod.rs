//! Containers: OCI spec from CRI config, lifecycle, logs, exits.

pub mod seccomp;
pub mod spec;
