//! Builds crid's pause program (src/pause/main.rs) as a static binary that
//! crid embeds (`include_bytes!`) to make its sandbox image without a network.

use std::process::Command;

fn main() {
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
