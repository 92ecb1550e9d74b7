//! The labels and extensions crid writes on containerd's records: what marks
//! an object as crid's, what kind of record it is, which pod it belongs to,
//! and where crid keeps its own metadata. Recovery and adoption read them
//! back, so their values are part of crid's on-disk format.

use std::collections::HashMap;

/// Label crid puts on every containerd object it creates; objects without it
/// are never touched (a node may run containerd's own CRI or `ctr` users).
pub const OWNER_LABEL: &str = "io.crid.owner";
pub const OWNER_VALUE: &str = "crid";
/// The container extension holding crid's sandbox or container metadata.
pub const METADATA_EXTENSION: &str = "io.crid.metadata";
/// `sandbox` or `container`.
pub const KIND_LABEL: &str = "io.crid.kind";
/// The pod a container record belongs to.
pub const SANDBOX_ID_LABEL: &str = "io.crid.sandbox-id";

/// The labels every object crid creates starts with.
pub fn owner_labels() -> HashMap<String, String> {
    HashMap::from([(OWNER_LABEL.to_string(), OWNER_VALUE.to_string())])
}
