//! What each configured runtime handler supports, as kubelet learns it from
//! `Status.runtime_handlers` (CRI 1.30+), detected once at start as
//! containerd does:
//! - recursive read-only mounts: the kernel has `mount_setattr` (5.12+) and
//!   the OCI runtime lists the `rro` mount option in `<binary> features`;
//! - user namespaces (`hostUsers: false` pods): handlers on containerd's
//!   runc shim or crid's own (crid pins the pod's user namespace itself
//!   and gives the rootfs to the mapped ids with idmapped mounts it makes
//!   itself, or a chowned copy of the image, which need nothing of the OCI
//!   runtime but joining a user namespace by path; both shims give the
//!   process's stdio pipes to the mapped root, `io_uid`/`io_gid`), when
//!   the kernel lets root create user namespaces. Not VM runtimes (Kata
//!   builds its own sandbox).
//!
//! A runtime without a `features` command (crun before 1.9, say) is
//! assumed to support neither.

use crate::config::{ContainerdConfig, RuntimeHandler};
use crate::containerd as ctrd;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerFeatures {
    pub recursive_read_only_mounts: bool,
    pub user_namespaces: bool,
}

/// The features of every configured handler, by name.
#[derive(Debug, Clone, Default)]
pub struct RuntimeHandlers {
    by_name: BTreeMap<String, HandlerFeatures>,
    default: String,
}

impl RuntimeHandlers {
    /// Ask each handler's OCI runtime for its features.
    pub async fn detect(config: &ContainerdConfig) -> RuntimeHandlers {
        let kernel_rro = kernel_at_least(&kernel_release(), (5, 12));
        let kernel_userns = kernel_user_namespaces();
        let mut by_name = BTreeMap::new();
        for (name, handler) in &config.runtimes {
            let binary = oci_binary(handler);
            let options = mount_options(binary).await;
            let features = HandlerFeatures {
                recursive_read_only_mounts: kernel_rro && options.iter().any(|o| o == "rro"),
                user_namespaces: kernel_userns && handler.runs_on_host_kernel(),
            };
            tracing::info!(handler = %name, binary, ?features, "runtime handler features");
            by_name.insert(name.clone(), features);
        }
        RuntimeHandlers {
            by_name,
            default: config.default_runtime.clone(),
        }
    }

    /// The features of handler `name` (empty: the default handler).
    pub fn features(&self, name: &str) -> HandlerFeatures {
        let name = if name.is_empty() { &self.default } else { name };
        self.by_name.get(name).copied().unwrap_or_default()
    }

    /// As `Status` lists them: the default handler as `""`, then each by
    /// name.
    pub fn list(&self) -> Vec<(String, HandlerFeatures)> {
        let mut out = vec![(String::new(), self.features(""))];
        out.extend(self.by_name.iter().map(|(n, f)| (n.clone(), *f)));
        out
    }
}

/// The OCI runtime a handler's shim runs: `binary_name`, runc when empty.
pub fn oci_binary(handler: &crate::config::RuntimeHandler) -> &str {
    if handler.binary_name.is_empty() {
        "runc"
    } else {
        &handler.binary_name
    }
}

/// `mountOptions` of `<binary> features`; empty when the runtime has no
/// such command or does not answer within 5 s.
async fn mount_options(binary: &str) -> Vec<String> {
    match runtime_stdout(binary, "features").await {
        Some(out) => parse_mount_options(&out),
        None => {
            tracing::debug!(
                binary,
                "no `features` answer: assuming no optional features"
            );
            vec![]
        }
    }
}

/// Stdout of `<binary> <command>` (an OCI runtime's `features`,
/// `--version`), when it succeeds within 5 s.
pub async fn runtime_stdout(binary: impl AsRef<std::ffi::OsStr>, command: &str) -> Option<Vec<u8>> {
    let run = tokio::process::Command::new(binary)
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(out)) if out.status.success() => Some(out.stdout),
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => None,
    }
}

fn parse_mount_options(features_json: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(features_json)
        .ok()
        .and_then(|v| {
            v.get("mountOptions")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|o| o.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The kernel has user namespaces and allows more than none.
fn kernel_user_namespaces() -> bool {
    std::path::Path::new("/proc/self/ns/user").exists()
        && std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `release` (`6.18.44-fc`, `5.12.0`) is at least `want`.
fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// The runtime of a container record: the handler's shim and its options.
pub(crate) fn runtime_of(h: &RuntimeHandler) -> ctrd::api::container::Runtime {
    ctrd::api::container::Runtime {
        name: h.runtime_type.clone(),
        options: runc_options(h),
    }
}

/// The runc shim's options of a handler (none when it sets nothing).
pub(crate) fn runc_options(h: &RuntimeHandler) -> Option<prost_types::Any> {
    task_options(h, None)
}

/// The runc shim's options for a task (crid's shim reads the same); in a
/// pod's own user namespace, the shim's stdio pipes (FIFO stdio, execs)
/// belong to the pod's mapped root (`io_uid`/`io_gid`, as containerd's
/// `WithUIDOwner`/`WithGIDOwner`).
pub(crate) fn task_options(
    h: &RuntimeHandler,
    userns: Option<crate::network::userns::PodUserns>,
) -> Option<prost_types::Any> {
    use prost::Message;
    if h.binary_name.is_empty() && h.root.is_empty() && !h.systemd_cgroup && userns.is_none() {
        return None;
    }
    let (io_uid, io_gid) = userns.map_or((0, 0), |u| u.root());
    let opts = ctrd::RuncOptions {
        binary_name: h.binary_name.clone(),
        root: h.root.clone(),
        systemd_cgroup: h.systemd_cgroup,
        io_uid,
        io_gid,
        ..Default::default()
    };
    Some(ctrd::any(ctrd::RUNC_OPTIONS_TYPE_URL, opts.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_of_a_pod_with_its_own_user_namespace_give_their_stdio_to_its_root() {
        use prost::Message;
        let userns = crate::network::userns::PodUserns::for_tests();
        let runc = RuntimeHandler::default();
        assert!(task_options(&runc, None).is_none());
        let any = task_options(&runc, Some(userns)).unwrap();
        let opts = crate::containerd::RuncOptions::decode(any.value.as_slice()).unwrap();
        assert_eq!((opts.io_uid, opts.io_gid), (100_000, 200_000));
    }

    #[test]
    fn kernel_versions_compare_by_major_then_minor() {
        assert!(kernel_at_least("6.18.44-fc-v595", (5, 12)));
        assert!(kernel_at_least("5.12.0", (5, 12)));
        assert!(!kernel_at_least("5.11.22-generic", (5, 12)));
        assert!(!kernel_at_least("4.19.0", (5, 12)));
        assert!(!kernel_at_least("", (5, 12)));
    }

    #[test]
    fn mount_options_come_from_the_features_json() {
        let json = br#"{"ociVersionMin":"1.0.0","mountOptions":["ro","rro","rbind"]}"#;
        assert_eq!(parse_mount_options(json), ["ro", "rro", "rbind"]);
        assert!(parse_mount_options(b"unknown command features").is_empty());
        assert!(parse_mount_options(br#"{"hooks":[]}"#).is_empty());
    }

    #[test]
    fn the_default_handler_is_listed_first_as_empty() {
        let rro = HandlerFeatures {
            recursive_read_only_mounts: true,
            user_namespaces: false,
        };
        let h = RuntimeHandlers {
            by_name: BTreeMap::from([
                ("crun".to_string(), HandlerFeatures::default()),
                ("runc".to_string(), rro),
            ]),
            default: "runc".into(),
        };
        assert_eq!(h.features(""), rro);
        assert_eq!(h.features("crun"), HandlerFeatures::default());
        assert_eq!(h.features("unknown"), HandlerFeatures::default());
        let names: Vec<String> = h.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["", "crun", "runc"]);
    }

    #[tokio::test]
    async fn a_runtime_without_features_offers_none() {
        assert!(mount_options("/nonexistent/runtime").await.is_empty());
    }
}
