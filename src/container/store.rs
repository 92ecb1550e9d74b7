//! The in-memory index of containers, rebuilt from containerd and crid's
//! status files at start-up. Metadata lives in the container's extension in
//! containerd; the changing status (started, exited, exit code) in an
//! atomically written `status.json` under crid's root, first written by
//! StartContainer (a created container has none; see `recovery`).

use crate::cri::{ContainerConfig, LinuxContainerResources, PodSandboxConfig};
use crate::error::Result;
use crate::util::index::IdIndex;
use crate::util::names::NameRegistry;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The file in a container's directory that holds its `ContainerStatus`.
pub const STATUS_FILE: &str = "status.json";

/// `<container>_<pod>_<namespace>_<uid>_<attempt>`: unique per sandbox + attempt.
pub fn container_name_key(config: &ContainerConfig, sandbox: &PodSandboxConfig) -> String {
    let c = config.metadata.clone().unwrap_or_default();
    let s = sandbox.metadata.clone().unwrap_or_default();
    format!(
        "{}_{}_{}_{}_{}",
        c.name, s.name, s.namespace, s.uid, c.attempt
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerMetadata {
    pub id: String,
    pub sandbox_id: String,
    pub config: ContainerConfig,
    /// Image id (`sha256:<config digest>`).
    pub image_ref: String,
    /// The image as the request named it.
    pub image_name: String,
    /// Absolute log path, `None` when the sandbox has no log directory.
    pub log_path: Option<PathBuf>,
    pub created_at: i64,
    /// Sandbox name key + container name + attempt, for reservations.
    pub name_key: String,
    /// The image's STOPSIGNAL, if any.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// The identity the container's process runs with, from its spec
    /// (`ContainerStatus.user`); `None` in records of older crids.
    #[serde(default)]
    pub user: Option<ProcessUser>,
    /// CDI devices injected into the spec (ContainerStatus verbose info).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdi_devices: Vec<super::cdi::InjectedDevice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

impl ProcessUser {
    /// The identity a spec's process runs with.
    pub fn of_spec(spec: &oci_spec::runtime::Spec) -> Option<ProcessUser> {
        spec.process().as_ref().map(|p| ProcessUser {
            uid: p.user().uid(),
            gid: p.user().gid(),
            additional_gids: p.user().additional_gids().clone().unwrap_or_default(),
        })
    }
}

impl ContainerMetadata {
    pub fn name(&self) -> &str {
        self.config
            .metadata
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or("")
    }
    pub fn attempt(&self) -> u32 {
        self.config
            .metadata
            .as_ref()
            .map(|m| m.attempt)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub state: ContainerState,
    pub pid: u32,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    /// Set when the kernel OOM-killed a process of the container.
    pub oom_killed: bool,
    /// Resources as last applied (UpdateContainerResources).
    pub resources: Option<LinuxContainerResources>,
}

impl ContainerStatus {
    pub fn created() -> Self {
        ContainerStatus {
            state: ContainerState::Created,
            pid: 0,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            oom_killed: false,
            resources: None,
        }
    }
}

/// Exits can be reported (by the event stream or `Tasks.Wait`) before
/// `StartContainer` has recorded that the task runs; such an exit waits here
/// until it has.
#[derive(Debug, Default)]
pub struct ExitGate {
    /// `StartContainer` recorded `Running` (or the container was loaded
    /// past `Created`).
    pub started: bool,
    /// (exit code, exited at) reported before `started`.
    pub pending: Option<(u32, i64)>,
}

pub struct Container {
    pub meta: ContainerMetadata,
    pub status: RwLock<ContainerStatus>,
    status_file: PathBuf,
    /// Serialises start/stop/remove of this container.
    pub op: tokio::sync::Mutex<()>,
    /// Notified when the container's task exits.
    pub exited: tokio::sync::Notify,
    /// Set by the first caller that records the task's exit (the event
    /// stream and `Tasks.Wait` both report it).
    pub exit_claimed: std::sync::atomic::AtomicBool,
    /// Holds an exit reported before `StartContainer` recorded `Running`.
    pub exit_gate: std::sync::Mutex<ExitGate>,
    /// The rootfs mounts CreateContainer got from `Snapshots.Prepare`, for
    /// StartContainer to use without asking containerd again (taken once;
    /// a container loaded at start-up asks).
    pub rootfs_mounts: std::sync::Mutex<Option<Vec<crate::containerd::Mount>>>,
    /// The memory cgroup of the running task, noted when it starts (or is
    /// found running at start-up), so that an exit can still read its OOM
    /// counter before the task's deletion removes the cgroup.
    pub memory_cgroup: std::sync::OnceLock<PathBuf>,
}

impl Container {
    /// The signal StopContainer sends first: the pod's, else the image's,
    /// else SIGTERM.
    pub fn stop_signal(&self) -> u32 {
        self.meta
            .stop_signal
            .as_deref()
            .and_then(crate::cri::signal::parse_signal)
            .unwrap_or(libc::SIGTERM as u32)
    }

    pub fn new(meta: ContainerMetadata, status: ContainerStatus, dir: &Path) -> Arc<Self> {
        let started = status.state != ContainerState::Created;
        Arc::new(Container {
            meta,
            status: RwLock::new(status),
            status_file: dir.join(STATUS_FILE),
            op: tokio::sync::Mutex::new(()),
            exited: tokio::sync::Notify::new(),
            exit_claimed: std::sync::atomic::AtomicBool::new(false),
            exit_gate: std::sync::Mutex::new(ExitGate {
                started,
                pending: None,
            }),
            rootfs_mounts: std::sync::Mutex::new(None),
            memory_cgroup: std::sync::OnceLock::new(),
        })
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// Note the memory cgroup of the task's process `pid`.
    pub fn note_memory_cgroup(&self, pid: u32) {
        if let Some(dir) = crate::util::platform::cgroup_usage::memory_dir_of_pid(pid) {
            let _ = self.memory_cgroup.set(dir);
        }
    }

    /// Whether the kernel OOM-killed a process of the container, by its
    /// cgroup's counter: a second source beside containerd's TaskOOM event,
    /// which a busy event stream can deliver after the exit was handled.
    /// Read before the task is deleted (that removes the cgroup).
    pub fn oom_killed_by_counter(&self) -> bool {
        self.memory_cgroup
            .get()
            .and_then(|d| crate::util::platform::cgroup_usage::oom_kills(d))
            .is_some_and(|n| n > 0)
    }

    pub fn status(&self) -> ContainerStatus {
        self.status.read().unwrap().clone()
    }

    /// Change the status and persist it atomically. The file is written
    /// under the lock, so concurrent updates land on disk in memory order.
    pub fn update_status(&self, f: impl FnOnce(&mut ContainerStatus)) -> Result<ContainerStatus> {
        let mut s = self.status.write().unwrap();
        f(&mut s);
        // No fsync: the file must survive a crid restart (the page cache
        // does that); after a machine crash the container is gone anyway.
        crate::util::persist::replace_json(&self.status_file, &*s)?;
        Ok(s.clone())
    }
}

pub struct ContainerStore {
    index: IdIndex<Container>,
    pub names: NameRegistry,
}

impl Default for ContainerStore {
    fn default() -> Self {
        ContainerStore {
            index: IdIndex::new("container", "container_id"),
            names: NameRegistry::default(),
        }
    }
}

impl ContainerStore {
    pub fn insert(&self, c: Arc<Container>) {
        self.index.insert(&c.meta.id, c.clone());
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Container>> {
        let c = self.index.remove(id)?;
        self.names.release(&c.meta.name_key, id);
        Some(c)
    }

    /// Look up by full id or unique prefix.
    pub fn get(&self, id: &str) -> Result<Arc<Container>> {
        self.index.get(id)
    }

    pub fn list(&self) -> Vec<Arc<Container>> {
        self.index.list()
    }

    pub fn in_sandbox(&self, sandbox_id: &str) -> Vec<Arc<Container>> {
        self.index
            .list()
            .into_iter()
            .filter(|c| c.meta.sandbox_id == sandbox_id)
            .collect()
    }
}

/// Volatile per-container files (logger control socket, stdin FIFO):
/// `<state>/c/<first 16 hex of id>`, short enough for unix socket paths.
pub fn state_dir(state_root: &Path, id: &str) -> PathBuf {
    state_root.join("c").join(&id[..id.len().min(16)])
}
