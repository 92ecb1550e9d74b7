//! Small helpers that no domain owns and every layer may use. Nothing here
//! imports a domain, the runtime root or the gRPC edge.

pub mod index;
pub mod names;
pub mod persist;
pub mod platform;
pub mod time;
pub mod unix_grpc;
pub mod uri;
