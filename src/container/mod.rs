//! Containers: OCI spec from CRI config, lifecycle, logs, exits.
