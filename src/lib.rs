//! crid: a Kubernetes CRI server that drives containerd over its own gRPC API.
//!
//! Layout (one direction of dependency, top to bottom; `crid check`,
//! `crid adopt` and `crid migrate` sit beside the gRPC edge):
//! - `server/`     — the thin gRPC edge: CRI messages in, domain calls, CRI messages out.
//! - `runtime/`    — the domain root: the `Runtime` every RPC runs on, one file
//!   per RPC family (`sandbox_run.rs`, `container_create.rs`, `stats.rs`, ...),
//!   exits, events, recovery.
//! - `sandbox/`, `container/`, `image/`, `network/`, `stream/` — the domains:
//!   stores, specs, pulls, CNI, streaming; no tonic types, no `runtime` import.
//! - `containerd/` — the one adapter that makes every containerd call.
//! - `cri/` (bindings, validation), `util/`, `config`, `error` — shared below all.
//! - `preflight/`, `adopt/`, `migrate/` — `crid check`, `crid adopt`, `crid migrate`.

pub mod adopt;
pub mod config;
pub mod container;
pub mod containerd;
pub mod cri;
pub mod error;
pub mod image;
/// The CRI container log format and crid-logger's control protocol (the
/// cri-log crate, shared with crid-logger and the shim); crid uses its
/// control-socket clients (reopen, attach).
pub use cri_log as logger;
pub mod metrics;
pub mod migrate;
pub mod network;
pub mod preflight;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod stream;
pub mod util;

pub use error::{Error, Result};

pub const RUNTIME_NAME: &str = "crid";
pub const RUNTIME_API_VERSION: &str = "v1";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
