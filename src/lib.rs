//! crid: a Kubernetes CRI server that drives containerd over its own gRPC API.
//!
//! Layout (one direction of dependency, top to bottom):
//! - `server/`     — the thin gRPC edge: CRI messages in, domain calls, CRI messages out.
//! - `runtime`     — the domain root that owns the services below.
//! - `sandbox/`, `container/`, `image/`, `network/`, `stream/` — domain logic, no tonic types.
//! - `containerd/` — the one adapter that makes every containerd call.
//! - `preflight/`  — `crid check`: judges the node with the modules above.

pub mod adopt;
pub mod config;
pub mod container;
pub mod containerd;
/// The CRI v1 bindings crid serves (the cri-api crate, CRI of Kubernetes 1.36).
pub mod cri;
/// A minimal Docker Engine API client (`crid migrate docker`, and crid-bench's docker path).
pub mod docker_engine;
pub mod error;
pub mod events;
pub mod exits;
pub mod image;
pub mod index;
pub mod introspect;
pub mod logger;
pub mod metrics;
pub mod migrate;
pub mod names;
pub mod network;
pub mod persist;
pub mod platform;
pub mod preflight;
pub mod recovery;
pub mod rootfs;
pub mod runtime;
pub mod runtime_handlers;
pub mod sandbox;
pub mod server;
pub mod stats;
pub mod stream;
pub mod unix_grpc;
pub mod uri;
pub mod userns;
pub mod util;
pub mod validate;

pub use error::{Error, Result};

pub const RUNTIME_NAME: &str = "crid";
pub const RUNTIME_API_VERSION: &str = "v1";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
