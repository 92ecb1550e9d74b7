//! Small helpers that no domain owns and every layer may use. Nothing here
//! imports a domain, the runtime root or the gRPC edge.

pub mod time;
