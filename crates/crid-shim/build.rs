//! Link the shim as a static, position-dependent executable.
//!
//! - Not PIE: a PIE's relocated read-only data (vtables, string tables:
//!   ~430 KiB here) is written by the dynamic loader at every start, so each
//!   shim process held a private copy of it; without PIE those pages stay
//!   clean, file-backed and shared by every shim on the node. (containerd's
//!   Go shims are not PIE either.)
//! - Static: a dynamically linked shim also carries private pages of the
//!   loader, of libc's, libm's and libgcc_s's data, GOTs and relocations,
//!   and maps four libraries: ~110 KiB of PSS per shim at 10 pods, more
//!   than glibc's code costs inside the binary, which all shims share.
//!
//! Cargo has no per-package `-C target-feature=+crt-static` on stable, and
//! without it rustc links std's libraries dynamically (`-Bdynamic -lgcc_s
//! -lc -lm ...`). So the link gets `-static`, and a search directory that
//! comes first holds, for each of those libraries, a `lib<name>.so` linker
//! script naming the static archive the C compiler knows. Where an archive
//! is missing (no libc6-dev), the shim is linked dynamically as before.
use std::path::PathBuf;
use std::process::Command;

/// std's native libraries on linux-gnu, and the archive that replaces
/// each in a static link (libgcc_s's unwinder is libgcc_eh's).
const STATIC_ARCHIVES: [(&str, &str); 7] = [
    ("c", "libc.a"),
    ("m", "libm.a"),
    ("util", "libutil.a"),
    ("rt", "librt.a"),
    ("pthread", "libpthread.a"),
    ("dl", "libdl.a"),
    ("gcc_s", "libgcc_eh.a"),
];

/// The C compiler's path of `archive`, if it has one.
fn archive_path(cc: &str, archive: &str) -> Option<PathBuf> {
    let out = Command::new(cc)
        .arg(format!("-print-file-name={archive}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // An unknown file is printed back as its bare name.
    (path.is_absolute() && path.exists()).then(|| path.canonicalize().unwrap_or(path))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu")
    {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("static-link");
    std::fs::create_dir_all(&dir).unwrap();
    for (lib, archive) in STATIC_ARCHIVES {
        let Some(path) = archive_path(&cc, archive) else {
            println!("cargo:warning=no {archive} ({cc} -print-file-name): the shim is linked dynamically");
            return;
        };
        let script = format!(
            "/* {archive} for lib{lib} in crid's static shim */\nGROUP ( {} )\n",
            path.display()
        );
        std::fs::write(dir.join(format!("lib{lib}.so")), script).unwrap();
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg-bins=-static");
}
