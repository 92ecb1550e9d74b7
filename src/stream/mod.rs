//! Streaming server for exec, attach and port-forward (SPDY/3.1 and WebSocket).
