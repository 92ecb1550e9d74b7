//! `make install` into a staging root (`DESTDIR`, `PREFIX=/usr`), from the
//! binaries this test run built (`BIN_DIR`, so no release build): the
//! binaries side by side, the unit starting the installed crid, crid's
//! default config; a second install keeps an operator's config; `make
//! uninstall` takes off what install put on and leaves the config.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn make(target: &str, destdir: &Path) -> String {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_crid")).parent().unwrap();
    let out = Command::new("make")
        // Not a sub-make of `make test`'s: no jobserver or flags of its.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg(target)
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg("PREFIX=/usr")
        .arg(format!("BIN_DIR={}", bin_dir.display()))
        .output()
        .expect("run make");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "make {target}:\n{text}");
    text
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn make_install_stages_a_node_layout_and_keeps_the_operators_config() {
    if Command::new("make").arg("--version").output().is_err() {
        eprintln!("SKIP: make not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dest = root.path();
    make("install", dest);

    let bin = dest.join("usr/bin");
    for b in ["crid", "crid-logger", "cridctl", "containerd-shim-crid-v1"] {
        assert_eq!(mode(&bin.join(b)), 0o755, "{b}");
    }
    assert!(!bin.join("crid-bench").exists(), "a development tool");
    let version = Command::new(bin.join("crid"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("crid "));

    let unit_path = dest.join("usr/lib/systemd/system/crid.service");
    assert_eq!(mode(&unit_path), 0o644);
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exec: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(
        exec,
        ["ExecStart=/usr/bin/crid --config /etc/crid/config.toml"]
    );

    let config_path: PathBuf = dest.join("etc/crid/config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let defaults = crid::config::Config::default();
    assert_eq!(crid::config::Config::parse(&config).unwrap(), defaults);

    // An operator's config survives a second install.
    let operator = "log_level = \"debug\"\n";
    std::fs::write(&config_path, operator).unwrap();
    let out = make("install", dest);
    assert!(out.contains("kept"), "{out}");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), operator);

    make("uninstall", dest);
    for b in ["crid", "crid-logger", "cridctl", "containerd-shim-crid-v1"] {
        assert!(!bin.join(b).exists(), "{b} left after uninstall");
    }
    assert!(!unit_path.exists());
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), operator);
}
