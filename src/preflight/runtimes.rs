//! Checks of the runtime handlers: each handler's OCI runtime (runc, crun)
//! and containerd shim are installed, with their versions. Looked up on
//! crid's own PATH, which should be containerd's too (the shim runs the
//! OCI runtime from containerd's PATH).

use super::{Finding, Group};
use crate::config::{ContainerdConfig, RuntimeHandler};
use crate::runtime::handlers::{oci_binary, runtime_stdout};
use std::path::{Path, PathBuf};

const G: Group = Group::Runtimes;

pub async fn check(config: &ContainerdConfig) -> Vec<Finding> {
    let mut out = vec![];
    for (name, handler) in &config.runtimes {
        let is_default = *name == config.default_runtime;
        out.push(oci_runtime(name, handler, is_default).await);
        out.push(shim(name, handler, is_default));
    }
    out
}

async fn oci_runtime(name: &str, handler: &RuntimeHandler, is_default: bool) -> Finding {
    let binary = oci_binary(handler);
    let check = format!("handler {name}: {binary}");
    match find_executable(binary) {
        Some(path) => {
            let version = version_line(&path).await;
            Finding::ok(G, check, format!("{} ({version})", path.display()))
        }
        None => missing(
            check,
            is_default,
            format!("{binary} not found on PATH"),
            format!("apt-get install {}", package_of(binary)),
            name,
        ),
    }
}

/// containerd runs `containerd-shim-<name>-<version>` for a runtime type
/// `io.containerd.<name>.<version>`.
fn shim(name: &str, handler: &RuntimeHandler, is_default: bool) -> Finding {
    let check = format!("handler {name}: shim");
    let Some(binary) = shim_binary(&handler.runtime_type) else {
        return Finding::blocker(
            G,
            check,
            format!("runtime_type {:?} names no shim", handler.runtime_type),
            format!(
                "set [containerd.runtimes.{name}] runtime_type = \"{}\"",
                crate::config::RUNC_SHIM
            ),
        );
    };
    match find_executable(&binary) {
        Some(path) => Finding::ok(G, check, path.display().to_string()),
        None => missing(
            check,
            is_default,
            format!("{binary} not found on PATH"),
            install_shim(&handler.runtime_type, &binary),
            name,
        ),
    }
}

/// How to install a missing shim: crid's own comes with crid.
fn install_shim(runtime_type: &str, binary: &str) -> String {
    if runtime_type == crate::config::CRID_SHIM {
        format!(
            "install {binary} on containerd's PATH: `make install` puts it next to crid \
             in /usr/local/bin; or set default_runtime = \"runc\" for containerd's runc shim"
        )
    } else {
        format!("install {binary} (Debian: apt-get install containerd)")
    }
}

/// A blocker for the default handler (no pod starts), a warning for any
/// other (only pods of its RuntimeClass fail).
fn missing(
    check: String,
    is_default: bool,
    detail: String,
    install: String,
    name: &str,
) -> Finding {
    if is_default {
        Finding::blocker(
            G,
            check,
            format!("{detail}: the default handler, no pod can start"),
            install,
        )
    } else {
        Finding::warn(
            G,
            check,
            format!("{detail}: pods of RuntimeClass handler {name} fail"),
            format!("{install}, or remove [containerd.runtimes.{name}] from crid's config"),
        )
    }
}

fn shim_binary(runtime_type: &str) -> Option<String> {
    let rest = runtime_type.strip_prefix("io.containerd.")?;
    let (name, version) = rest.rsplit_once('.')?;
    (!name.is_empty() && !version.is_empty())
        .then(|| format!("containerd-shim-{}-{version}", name.replace('.', "-")))
}

/// Debian's package for an OCI runtime binary.
fn package_of(binary: &str) -> &str {
    Path::new(binary)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(binary)
}

/// `binary` itself when it is a path, else the first executable of that
/// name on PATH.
fn find_executable(binary: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if binary.contains('/') {
        let p = PathBuf::from(binary);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| is_exec(p))
}

/// First line of `<binary> --version`, within 5 s.
async fn version_line(binary: &Path) -> String {
    match runtime_stdout(binary, "--version").await {
        Some(out) => String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        None => "version unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_named_after_the_runtime_type() {
        assert_eq!(
            shim_binary("io.containerd.runc.v2").as_deref(),
            Some("containerd-shim-runc-v2")
        );
        assert_eq!(
            shim_binary("io.containerd.kata.v2").as_deref(),
            Some("containerd-shim-kata-v2")
        );
        assert_eq!(shim_binary("runc"), None);
    }

    #[tokio::test]
    async fn a_missing_default_runtime_blocks_and_another_warns() {
        let handler = RuntimeHandler {
            binary_name: "/nonexistent/crun".into(),
            ..RuntimeHandler::default()
        };
        let f = oci_runtime("crun", &handler, true).await;
        assert_eq!(f.outcome, super::super::Outcome::Blocker);
        assert_eq!(f.fix.as_deref(), Some("apt-get install crun"));
        let f = oci_runtime("crun", &handler, false).await;
        assert_eq!(f.outcome, super::super::Outcome::Warn);
    }
}
