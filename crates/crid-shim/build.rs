//! Link the shim as a position-dependent executable. A PIE's relocated
//! read-only data (vtables, string tables: ~430 KiB here) is written by the
//! dynamic loader at every start, so each shim process held a private
//! copy of it; without PIE those pages stay clean, file-backed and shared by
//! every shim on the node. (containerd's Go shims are not PIE either.)
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
