//! Pod sandboxes: network namespace, pause container, CNI, and their teardown.

pub mod files;
pub mod resources;
pub mod spec;
pub mod store;

pub use store::{Sandbox, SandboxMetadata, SandboxState, SandboxStatus, SandboxStore};
