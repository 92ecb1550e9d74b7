//! crid's configuration: a TOML file (`/etc/crid/config.toml` or `--config`),
//! every key defaulted, command-line flags applied on top.
//! Owns parsing and defaults only; nothing here touches the system.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/crid/config.toml";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// CRI socket, `unix:///path`.
    pub listen: String,
    /// Persistent data (sandbox dirs, CNI result cache).
    pub root: PathBuf,
    /// Volatile state (netns files, FIFOs); lost on reboot.
    pub state: PathBuf,
    /// `error`, `warn`, `info`, `debug`, `trace` or a tracing filter.
    pub log_level: String,
    /// Image used for pod sandboxes (pause). Built locally when absent.
    pub sandbox_image: String,
    /// Address of the exec/attach/port-forward streaming server.
    pub stream_address: String,
    /// Prometheus metrics address; empty disables it.
    pub metrics_address: String,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: String,
    /// What to do with a limit the node's cgroups cannot apply (hugepage
    /// limits without the hugetlb controller, swap without swap accounting,
    /// cpu quota without CFS bandwidth, cpuset, `unified` entries...):
    /// `drop` leaves it out of the container's spec (logged once per kind
    /// at debug), as containerd's CRI does with hugepage limits; `refuse`
    /// fails CreateContainer, UpdateContainerResources or RunPodSandbox
    /// with FailedPrecondition naming the controller.
    pub missing_cgroup_controllers: MissingCgroupControllers,
    /// Run pods that need no pause process without one: a pod with its own
    /// network namespace, no shared PID namespace and no sysctls, on
    /// containerd's runc shim, gets its network, IPC and UTS namespaces
    /// pinned by crid instead. On by default, as CRI-O's `drop_infra_ctr`;
    /// saves a shim start and a runc container per pod. `false` gives every
    /// pod a pause container, as containerd's CRI plugin and cri-dockerd do.
    pub drop_pause_container: bool,
    /// When a sandbox asks for the `RuntimeDefault` seccomp profile and runs
    /// crid's built-in pause image, give the pause process a profile that
    /// allows only the syscalls that program makes (native architecture
    /// only) instead of the whole default profile: stricter, and it saves
    /// runc ~15 ms of filter compilation per pod. Other sandbox images always
    /// get the whole profile.
    pub minimal_pause_seccomp: bool,
    /// Give a container or pause process whose config asks for no seccomp
    /// profile the `RuntimeDefault` one, as CRI-O's
    /// `seccomp_use_default_when_empty`. Off by default: the CRI and
    /// containerd read no profile as unconfined (kubelet sends
    /// `RuntimeDefault` itself when its `seccompDefault` is on).
    pub seccomp_default_when_empty: bool,
    /// Pods in a user namespace of their own get their rootfs as an
    /// idmapped mount of the snapshot where the kernel can idmap an
    /// overlay; `false` gives them a chowned copy of the image instead
    /// (as containerd 1.7), which is also the fallback.
    pub idmapped_rootfs: bool,
    pub containerd: ContainerdConfig,
    pub cni: CniConfig,
    pub registry: RegistryConfig,
    pub cdi: CdiConfig,
}

/// `missing_cgroup_controllers`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MissingCgroupControllers {
    #[default]
    Drop,
    Refuse,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerdConfig {
    /// containerd's gRPC socket path.
    pub address: PathBuf,
    /// containerd namespace crid works in.
    pub namespace: String,
    pub snapshotter: String,
    /// Runtime handler used when the pod names none.
    pub default_runtime: String,
    /// RuntimeClass handler name → containerd runtime.
    pub runtimes: BTreeMap<String, RuntimeHandler>,
    /// Pulls write layers straight into containerd's local content store
    /// (found with `Introspection.Plugins`; needs its default `shared`
    /// content policy) and record them with a `Content.Write` that carries
    /// no data, instead of streaming every byte over gRPC. Falls back to
    /// streaming when containerd does not see the files crid writes.
    pub direct_layer_writes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeHandler {
    /// containerd runtime type, e.g. `io.containerd.runc.v2`.
    pub runtime_type: String,
    /// OCI runtime binary given to the shim (`BinaryName` of the runc options); empty = runc.
    pub binary_name: String,
    /// Root directory of the OCI runtime state; empty = the runtime's default.
    pub root: String,
    pub systemd_cgroup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CniConfig {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    /// Seconds a single plugin invocation may take.
    pub plugin_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Directory of `<host>/hosts.toml` files, containerd's format.
    pub config_path: PathBuf,
    /// A pull that makes no progress for this many seconds fails.
    pub pull_progress_timeout_secs: u64,
    /// Layers one pull downloads at once (containerd's CRI plugin has the
    /// same setting, with the same default of 3).
    pub max_concurrent_downloads: usize,
}

/// Container Device Interface: devices a container asks for by qualified
/// name (`ContainerConfig.cdi_devices`, `cdi.k8s.io/*` annotations) are
/// resolved against the CDI spec files in `spec_dirs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CdiConfig {
    /// Off: CDI requests are ignored, as containerd does with `enable_cdi = false`.
    pub enabled: bool,
    /// Spec directories, lowest priority first: a device defined in a later
    /// directory replaces one of the same name in an earlier one.
    pub spec_dirs: Vec<PathBuf>,
}

impl Default for CdiConfig {
    fn default() -> Self {
        CdiConfig {
            enabled: true,
            spec_dirs: vec!["/etc/cdi".into(), "/var/run/cdi".into()],
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "unix:///run/crid/crid.sock".into(),
            root: "/var/lib/crid".into(),
            state: "/run/crid".into(),
            log_level: "info".into(),
            sandbox_image: "registry.k8s.io/pause:3.9".into(),
            stream_address: "127.0.0.1:0".into(),
            metrics_address: String::new(),
            cgroup_driver: "cgroupfs".into(),
            missing_cgroup_controllers: MissingCgroupControllers::Drop,
            drop_pause_container: true,
            minimal_pause_seccomp: true,
            seccomp_default_when_empty: false,
            idmapped_rootfs: true,
            containerd: ContainerdConfig::default(),
            cni: CniConfig::default(),
            registry: RegistryConfig::default(),
            cdi: CdiConfig::default(),
        }
    }
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        let mut runtimes = BTreeMap::new();
        runtimes.insert("runc".to_string(), RuntimeHandler::default());
        runtimes.insert(
            "crun".to_string(),
            RuntimeHandler {
                binary_name: "crun".into(),
                ..RuntimeHandler::default()
            },
        );
        // crid's own shim is the default: one small process per pod that
        // writes the CRI logs itself. containerd's runc shim stays a
        // handler (`runc`, `crun`) for RuntimeClasses, and for nodes that
        // set `default_runtime = "runc"`.
        runtimes.insert(
            DEFAULT_RUNTIME.to_string(),
            RuntimeHandler {
                runtime_type: CRID_SHIM.into(),
                ..RuntimeHandler::default()
            },
        );
        ContainerdConfig {
            address: "/run/containerd/containerd.sock".into(),
            namespace: "k8s.io".into(),
            snapshotter: "overlayfs".into(),
            default_runtime: DEFAULT_RUNTIME.into(),
            runtimes,
            direct_layer_writes: true,
        }
    }
}

/// The default runtime handler: runc under crid's own shim.
pub const DEFAULT_RUNTIME: &str = "crid-shim";

/// containerd's runc shim: runs runc, or another OCI runtime given as
/// `binary_name` (crun), on the host's kernel.
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";

/// crid's own shim (`containerd-shim-crid-v1`, crates/crid-shim): runs runc
/// or crun on the host's kernel too, with the same runtime options.
pub const CRID_SHIM: &str = "io.containerd.crid.v1";

impl RuntimeHandler {
    /// Whether the handler runs containers with an OCI runtime on the
    /// host's kernel (containerd's runc shim or crid's), not in a VM.
    pub fn runs_on_host_kernel(&self) -> bool {
        self.runtime_type == RUNC_SHIM || self.runtime_type == CRID_SHIM
    }
}

impl Default for RuntimeHandler {
    fn default() -> Self {
        RuntimeHandler {
            runtime_type: RUNC_SHIM.into(),
            binary_name: String::new(),
            root: String::new(),
            systemd_cgroup: false,
        }
    }
}

impl Default for CniConfig {
    fn default() -> Self {
        CniConfig {
            conf_dir: "/etc/cni/net.d".into(),
            bin_dirs: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
            plugin_timeout_secs: 30,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            config_path: "/etc/crid/certs.d".into(),
            pull_progress_timeout_secs: 60,
            max_concurrent_downloads: 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Load `path`. A missing file is only an error when `required`
    /// (an explicit `--config`); the default path may be absent.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text).map_err(|message| ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parse TOML text; the error message names the key and the line.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| {
            // For an unknown key toml's span covers the whole table: find the key's own line.
            let unknown_key_line = e
                .message()
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .and_then(|key| {
                    text.lines().position(|l| {
                        let l = l.trim_start();
                        l.strip_prefix(key)
                            .is_some_and(|r| r.trim_start().starts_with('='))
                    })
                })
                .map(|i| i + 1);
            let line = unknown_key_line.or_else(|| {
                e.span()
                    .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            });
            match line {
                Some(l) => {
                    let text_of_line = text.lines().nth(l - 1).unwrap_or("").trim();
                    format!("line {l} ({text_of_line}): {}", e.message())
                }
                None => e.message().to_string(),
            }
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Path of the CRI socket from `listen` (`unix:///x` or a bare path).
    pub fn listen_path(&self) -> Result<PathBuf, ConfigError> {
        let p = self.listen.strip_prefix("unix://").unwrap_or(&self.listen);
        if !p.starts_with('/') {
            return Err(ConfigError::Invalid(format!(
                "listen: {:?} is not unix:///absolute/path",
                self.listen
            )));
        }
        Ok(PathBuf::from(p))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_path()?;
        if !matches!(self.cgroup_driver.as_str(), "cgroupfs" | "systemd") {
            return Err(ConfigError::Invalid(format!(
                "cgroup_driver: {:?} is neither cgroupfs nor systemd",
                self.cgroup_driver
            )));
        }
        if !self
            .containerd
            .runtimes
            .contains_key(&self.containerd.default_runtime)
        {
            let d = &self.containerd.default_runtime;
            // A [containerd.runtimes] table replaces the default one, so a
            // file written for crid before its own shim became the default
            // names runc's handler only.
            let hint = if d == DEFAULT_RUNTIME {
                format!(
                    " (the default): add [containerd.runtimes.{d}] runtime_type = \"{CRID_SHIM}\", \
                     or set default_runtime = \"runc\" to stay on containerd's runc shim"
                )
            } else {
                String::new()
            };
            return Err(ConfigError::Invalid(format!(
                "containerd.default_runtime: {d:?} is not a key of containerd.runtimes{hint}"
            )));
        }
        if self.registry.max_concurrent_downloads == 0 {
            return Err(ConfigError::Invalid(
                "registry.max_concurrent_downloads: must be at least 1".into(),
            ));
        }
        if let Some(dir) = self.cdi.spec_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(ConfigError::Invalid(format!(
                "cdi.spec_dirs: {dir:?} is not absolute"
            )));
        }
        for (key, dir) in [("root", &self.root), ("state", &self.state)] {
            if !dir.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "{key}: {dir:?} is not absolute"
                )));
            }
        }
        Ok(())
    }

    /// Directory of one sandbox's files (hosts, resolv.conf, hostname, shm).
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    /// Volatile per-sandbox state (netns pin file lives under `netns/`).
    pub fn netns_dir(&self) -> PathBuf {
        self.state.join("netns")
    }

    /// Pins of the IPC and UTS namespaces of pods without a pause container.
    pub fn ipc_ns_dir(&self) -> PathBuf {
        self.state.join("ipcns")
    }
    pub fn uts_ns_dir(&self) -> PathBuf {
        self.state.join("utsns")
    }
    /// Pinned user namespaces of pods that have their own.
    pub fn user_ns_dir(&self) -> PathBuf {
        self.state.join("userns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_through_toml() {
        let c = Config::default();
        assert_eq!(Config::parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn malformed_file_names_key_and_line() {
        let err = Config::parse("log_level = \"debug\"\n\n[cni]\nconf_dir = 5\n").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("conf_dir") || err.contains("string"), "{err}");
        let err = Config::parse("listen = \"unix:///x\"\nbogus = 1\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn validate_rejects_relative_socket_and_unknown_driver() {
        let c = Config {
            listen: "relative.sock".into(),
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            cgroup_driver: "weird".into(),
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("cgroup_driver"));
        let mut c = Config::default();
        c.registry.max_concurrent_downloads = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_concurrent_downloads"));
    }

    #[test]
    fn missing_cgroup_controllers_is_drop_or_refuse() {
        assert!(Config::default()
            .to_toml()
            .contains("missing_cgroup_controllers = \"drop\""));
        let c = Config::parse("missing_cgroup_controllers = \"refuse\"\n").unwrap();
        assert_eq!(
            c.missing_cgroup_controllers,
            MissingCgroupControllers::Refuse
        );
        let err = Config::parse("missing_cgroup_controllers = \"ignore\"\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("drop"), "{err}");
    }

    #[test]
    fn cdi_defaults_to_on_with_the_two_standard_dirs() {
        let c = Config::default();
        assert!(c.cdi.enabled);
        assert_eq!(
            c.cdi.spec_dirs,
            vec![PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")]
        );
        let c = Config::parse("[cdi]\nspec_dirs = [\"/x\"]\n").unwrap();
        assert!(c.cdi.enabled);
        assert_eq!(c.cdi.spec_dirs, vec![PathBuf::from("/x")]);
    }

    #[test]
    fn a_runtimes_table_without_crids_shim_says_how_to_keep_runc() {
        let c =
            Config::parse("[containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n")
                .unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("default_runtime = \"runc\""), "{err}");
        let c = Config::parse(
            "[containerd]\ndefault_runtime = \"runc\"\n[containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n",
        )
        .unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn partial_section_keeps_other_defaults() {
        let c = Config::parse("[containerd]\nnamespace = \"other\"\n").unwrap();
        assert_eq!(c.containerd.namespace, "other");
        assert_eq!(c.containerd.snapshotter, "overlayfs");
        assert!(c.containerd.runtimes.contains_key("crun"));
        assert_eq!(
            c.containerd.runtimes[&c.containerd.default_runtime].runtime_type,
            CRID_SHIM
        );
    }
}
