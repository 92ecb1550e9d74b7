//! Pod sandboxes: network namespace, pause container, CNI, and their teardown.

pub mod spec;
