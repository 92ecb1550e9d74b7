//! Generates the CRI bindings from proto/runtime/v1/api.proto, and builds
//! crid's pause program (src/pause/main.rs) as a static binary that crid
//! embeds (`include_bytes!`) to make its sandbox image without a network.

use std::process::Command;

fn main() {
    cri_bindings();
    pause_program();
}

/// The CRI messages are also what crid records about pods and containers
/// (JSON in containerd extensions), so they derive serde, and every message
/// takes defaults for missing fields: records written against an older CRI
/// stay readable. `KeyValue.value` became `bytes` in CRI 1.36 (it was a
/// string): it is still written as a string when it is UTF-8, and read from
/// either. `AuthConfig` gets a `Debug` that hides its secrets (src/cri.rs).
fn cri_bindings() {
    println!("cargo:rerun-if-changed=proto/runtime/v1/api.proto");
    tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .message_attribute(".", "#[serde(default)]")
        .field_attribute(
            "runtime.v1.KeyValue.value",
            "#[serde(with = \"crate::cri::bytes_as_text\")]",
        )
        .skip_debug(["runtime.v1.AuthConfig"])
        .compile_protos(&["proto/runtime/v1/api.proto"], &["proto/"])
        .expect("generate the CRI bindings (needs protoc)");
}

fn pause_program() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let dest = format!("{out}/crid-pause");
    println!("cargo:rerun-if-changed=src/pause/main.rs");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "panic=abort",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-o",
            &dest,
            "src/pause/main.rs",
        ])
        .status()
        .expect("run rustc for the pause program");
    assert!(status.success(), "building src/pause/main.rs failed");
}
