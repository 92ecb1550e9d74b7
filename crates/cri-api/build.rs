//! Generates the CRI bindings from the workspace's proto/runtime/v1/api.proto.
//!
//! The CRI messages are also what crid records about pods and containers
//! (JSON in containerd extensions), so they derive serde, and every message
//! takes defaults for missing fields: records written against an older CRI
//! stay readable. `KeyValue.value` became `bytes` in CRI 1.36 (it was a
//! string): it is still written as a string when it is UTF-8, and read from
//! either. `AuthConfig` gets a `Debug` that hides its secrets (src/lib.rs).

const PROTO_ROOT: &str = "../../proto";
const API_PROTO: &str = "../../proto/runtime/v1/api.proto";

fn main() {
    println!("cargo:rerun-if-changed={API_PROTO}");
    tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .message_attribute(".", "#[serde(default)]")
        .field_attribute(
            "runtime.v1.KeyValue.value",
            "#[serde(with = \"crate::bytes_as_text\")]",
        )
        .skip_debug(["runtime.v1.AuthConfig"])
        .compile_protos(&[API_PROTO], &[PROTO_ROOT])
        .expect("generate the CRI bindings (needs protoc)");
}
