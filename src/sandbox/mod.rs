//! Pod sandboxes: network namespace, pause container, CNI, and their teardown.

pub mod files;
pub mod lifecycle;
pub mod pause;
pub mod resources;
pub mod run;
pub mod spec;
pub mod store;

pub use store::{Sandbox, SandboxMetadata, SandboxState, SandboxStatus, SandboxStore};
