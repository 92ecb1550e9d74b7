//! `RunPodSandbox`: reserve the name, write the sandbox files, pin a network
//! namespace, run CNI ADD, create and start the pause container. Any failure
//! undoes every step already taken (`teardown`) and names the failed step.

use crate::containerd::labels::{owner_labels, KIND_LABEL, METADATA_EXTENSION, SANDBOX_ID_LABEL};
use crate::containerd::{self as ctrd, Container as CtrdContainer};
use crate::cri::PodSandboxConfig;
use crate::error::{Error, Result};
use crate::metrics::phases::{PhaseClock, Spent};
use crate::network::netns::{ExtraPins, NetNs};
use crate::runtime::events::ContainerEventKind;
use crate::runtime::handlers::{runc_options, runtime_of};
use crate::runtime::Runtime;
use crate::sandbox::pod::{host_ipc, host_network, needs_pause, pod_network};
use crate::sandbox::store::{
    sandbox_name_key, Sandbox, SandboxMetadata, SandboxState, SandboxStatus,
};
use crate::util::time::now_nanos;
use std::collections::HashMap;
use std::path::PathBuf;

/// Which steps of a sandbox's setup exist (and so must be undone).
#[derive(Debug, Default, Clone)]
pub(crate) struct Progress {
    pub dir: bool,
    pub shm: bool,
    pub netns: Option<PathBuf>,
    pub cni: bool,
    pub snapshot: bool,
    pub container: bool,
    pub task: bool,
    /// IPC/UTS namespace pins of a pod without a pause container.
    pub pins: Vec<PathBuf>,
}

pub(crate) fn validate_sandbox_config(config: &PodSandboxConfig) -> Result<()> {
    crate::cri::validate::sandbox_config(config)
}

impl Runtime {
    pub async fn run_pod_sandbox(
        &self,
        config: PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        validate_sandbox_config(&config)?;
        crate::container::spec::check_node_applies(
            self.config.missing_cgroup_controllers,
            "config.linux.resources",
            config.linux.as_ref().and_then(|l| l.resources.as_ref()),
        )?;
        let handler = self.runtime_handler(runtime_handler)?;
        if crate::network::userns::of_pod(&config).is_some()
            && !self.handlers.features(&handler.0).user_namespaces
        {
            return Err(Error::precondition(format!(
                "runtime handler {:?} does not support user namespaces (hostUsers: false)",
                handler.0
            )));
        }
        let id = crate::util::names::new_id();
        let name_key = sandbox_name_key(&config);
        self.sandboxes.names.reserve(&name_key, &id)?;
        let userns = crate::network::userns::of_pod(&config);
        let mut meta = SandboxMetadata {
            id: id.clone(),
            config,
            netns_path: None,
            runtime_handler: handler.0.clone(),
            created_at: now_nanos(),
            ip: String::new(),
            additional_ips: vec![],
            without_pause: false,
            ipc_ns_path: None,
            uts_ns_path: None,
            userns,
            user_ns_path: None,
        };
        if self.config.drop_pause_container && !needs_pause(&meta.config, &handler.1) {
            meta.without_pause = true;
            meta.uts_ns_path = Some(self.config.uts_ns_dir().join(&id));
            if !host_ipc(&meta.config) {
                meta.ipc_ns_path = Some(self.config.ipc_ns_dir().join(&id));
            }
        }
        if meta.userns.is_some() {
            meta.user_ns_path = Some(self.config.user_ns_dir().join(&id));
        }
        let mut progress = Progress::default();
        let mut clock = PhaseClock::start("RunPodSandbox");
        let setup = self
            .setup_sandbox(&mut meta, &handler.1, &mut progress, &mut clock)
            .await;
        clock.finish(&id);
        match setup {
            Ok(pid) => {
                let sandbox = Sandbox::new(
                    meta,
                    SandboxStatus {
                        state: SandboxState::Ready,
                        pid,
                        resources: None,
                    },
                );
                self.sandboxes.insert(sandbox);
                // As containerd's CRI: a sandbox's events carry its id as the
                // container id (kubelet's evented PLEG).
                self.events.publish(ContainerEventKind::Created, &id, &id);
                self.events.publish(ContainerEventKind::Started, &id, &id);
                tracing::info!(sandbox = %id, "pod sandbox running");
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(sandbox = %id, error = %e, "RunPodSandbox failed; rolling back");
                if let Err(undo) = self.teardown_sandbox(&meta, &progress).await {
                    tracing::error!(sandbox = %id, error = %undo, "rollback incomplete");
                }
                self.sandboxes.names.release(&name_key, &id);
                Err(e)
            }
        }
    }

    /// Resolve a RuntimeClass handler (empty = default) to its config.
    pub(crate) fn runtime_handler(
        &self,
        name: &str,
    ) -> Result<(String, crate::config::RuntimeHandler)> {
        let name = if name.is_empty() {
            self.config.containerd.default_runtime.as_str()
        } else {
            name
        };
        self.config
            .containerd
            .runtimes
            .get(name)
            .map(|h| (name.to_string(), h.clone()))
            .ok_or_else(|| Error::invalid(format!("runtime handler {name:?} is not configured")))
    }

    async fn setup_sandbox(
        &self,
        meta: &mut SandboxMetadata,
        handler: &crate::config::RuntimeHandler,
        progress: &mut Progress,
        clock: &mut PhaseClock,
    ) -> Result<u32> {
        let id = meta.id.clone();
        clock.mark("validate", Spent::Crid);
        let dir = self.config.sandbox_dir(&id);
        let files = crate::sandbox::files::sandbox_files(&dir);
        let host_net = host_network(&meta.config);
        if !host_net {
            meta.netns_path = Some(self.config.netns_dir().join(&id));
        }

        // The host side (sandbox files, /dev/shm, the netns) is crid's own
        // work and the pause container's record and rootfs need only its
        // paths: build it on a blocking thread meanwhile. The pause task
        // needs both.
        progress.dir = true;
        let host_side = {
            let (dir, meta) = (dir.clone(), meta.clone());
            tokio::task::spawn_blocking(move || {
                let t = std::time::Instant::now();
                let mut made = HostSide::default();
                let result = set_up_host_side(&dir, &meta, &mut made);
                (made, result, t.elapsed())
            })
        };
        let record = self.create_pause_record(meta, &files, handler, progress, clock);
        let (host_side, record) = tokio::join!(host_side, record);
        let host_result = match host_side {
            Ok((made, result, took)) => {
                progress.shm = made.shm;
                progress.netns = made.netns;
                progress.pins = made.pins;
                clock.note("host_side", took);
                clock.note("sandbox_files", made.files_took);
                if let Some(t) = made.netns_took {
                    clock.note("netns", t);
                }
                result
            }
            // Whatever it made is unknown: teardown tolerates what is missing.
            Err(e) => {
                progress.shm = true;
                progress.netns = meta.netns_path.clone();
                progress.pins = pin_paths(meta);
                Err(Error::internal(format!("host side of the sandbox: {e}")))
            }
        };
        clock.mark("host_side_wait", Spent::Crid);
        let mut mounts = record?;
        host_result?;
        // (No pause container: no rootfs.)
        let userns = meta.pod_userns().filter(|_| !mounts.is_empty());
        if let Some(userns) = userns {
            mounts = self.idmapped_rootfs_of(&id, userns, mounts).await?;
            clock.mark("idmapped_rootfs", Spent::Crid);
        }

        if host_net {
            return self
                .start_pause_task(&id, mounts, handler, progress, clock)
                .await;
        }
        let pod = pod_network(meta).expect("netns set");
        if meta.without_pause {
            progress.cni = true;
            let network = self.cni.setup(&pod).await;
            clock.mark("cni", Spent::Cni);
            let network = network.map_err(|e| e.context("CNI ADD"))?;
            meta.ip = network.ip;
            meta.additional_ips = network.additional_ips;
            return Ok(0);
        }
        // CNI ADD and the pause task need only the netns, not each other: run
        // them concurrently. The pause container's metadata was written
        // before the IP is known; recovery reads the IP from the CNI result
        // cache, as libcni keeps it.
        progress.cni = true;
        let cni = async {
            let t = std::time::Instant::now();
            let result = self.cni.setup(&pod).await;
            (result, t.elapsed())
        };
        let pause = self.start_pause_task(&id, mounts, handler, progress, clock);
        // The pause task first: its containerd calls are the longer path.
        let (pause, (network, cni_took)) = tokio::join!(pause, cni);
        clock.mark("cni_wait", Spent::Cni);
        clock.note("cni", cni_took);
        let network = network.map_err(|e| e.context("CNI ADD"));
        let pid = pause?;
        let network = network?;
        meta.ip = network.ip;
        meta.additional_ips = network.additional_ips;
        Ok(pid)
    }

    /// The pause container's record and rootfs snapshot: needs the sandbox
    /// image and the paths of the sandbox files and netns, not the files.
    /// A pod without a pause container gets the record only: it holds the
    /// sandbox's metadata in containerd.
    async fn create_pause_record(
        &self,
        meta: &SandboxMetadata,
        files: &crate::sandbox::files::SandboxFiles,
        handler: &crate::config::RuntimeHandler,
        progress: &mut Progress,
        clock: &mut PhaseClock,
    ) -> Result<Vec<ctrd::Mount>> {
        let id = meta.id.clone();
        let image = self
            .images
            .ensure_sandbox_image()
            .await
            .map_err(|e| e.context("sandbox image"))?;
        clock.mark("sandbox_image", Spent::Containerd);
        let spec = crate::runtime::sandbox_pause::pause_spec(self, meta, &image, files)?;
        let spec_json =
            serde_json::to_vec(&spec).map_err(|e| Error::internal(format!("encode spec: {e}")))?;
        clock.mark("pause_spec", Spent::Crid);

        let mut labels = owner_labels();
        labels.insert(KIND_LABEL.into(), "sandbox".into());
        labels.insert(SANDBOX_ID_LABEL.into(), id.clone());
        let mut extensions = HashMap::new();
        extensions.insert(
            METADATA_EXTENSION.to_string(),
            ctrd::any(
                "io.crid.SandboxMetadata",
                serde_json::to_vec(&meta).map_err(|e| Error::internal(e.to_string()))?,
            ),
        );
        clock.mark("pause_metadata", Spent::Crid);
        // The record first: it references the snapshot key, so the snapshot
        // is never unreferenced and needs no lease.
        let (snapshotter, snapshot_key) = if meta.without_pause {
            (String::new(), String::new())
        } else {
            (self.containerd.snapshotter().to_string(), id.clone())
        };
        progress.container = true;
        self.containerd
            .create_container(CtrdContainer {
                id: id.clone(),
                labels,
                image: image.id.clone(),
                runtime: Some(runtime_of(handler)),
                spec: Some(ctrd::any(ctrd::SPEC_TYPE_URL, spec_json)),
                snapshotter,
                snapshot_key,
                extensions,
                ..Default::default()
            })
            .await
            .map_err(|e| e.context("create pause container"))?;
        clock.mark("pause_create", Spent::Containerd);
        if meta.without_pause {
            return Ok(vec![]);
        }
        progress.snapshot = true;
        let mounts = match self.prepare_pause_rootfs(meta, &image).await {
            // The cached sandbox image lost its snapshots: unpack it again.
            Err(e) if e.is_not_found() => {
                tracing::warn!(sandbox = %id, "sandbox image snapshots are gone; unpacking it again: {e}");
                self.images.forget_sandbox_image();
                let image = self.images.ensure_sandbox_image().await?;
                self.prepare_pause_rootfs(meta, &image).await
            }
            prepared => prepared,
        }
        .map_err(|e| e.context("rootfs snapshot"))?;
        clock.mark("pause_rootfs", Spent::Containerd);
        Ok(mounts)
    }

    /// The pause container's rootfs; in a pod's own user namespace, on the
    /// image's copy owned by the mapped ids (runc cannot make its mount
    /// points in the image's directories otherwise).
    async fn prepare_pause_rootfs(
        &self,
        meta: &SandboxMetadata,
        image: &crate::image::Loaded,
    ) -> Result<Vec<ctrd::Mount>> {
        let parent = self
            .rootfs_parent(&image.chain_id, &image.id, meta.userns)
            .await?;
        self.prepare_rootfs_of_record(&meta.id, &parent).await
    }

    /// Create and start the pause task once its record, rootfs, sandbox
    /// files and netns (unless on the host network) exist.
    async fn start_pause_task(
        &self,
        id: &str,
        mounts: Vec<ctrd::Mount>,
        handler: &crate::config::RuntimeHandler,
        progress: &mut Progress,
        clock: &mut PhaseClock,
    ) -> Result<u32> {
        let started = std::time::Instant::now();
        progress.task = true;
        self.containerd
            .create_task(id, mounts, ctrd::TaskIo::default(), runc_options(handler))
            .await
            .map_err(|e| e.context("create pause task"))?;
        clock.mark("pause_task_create", Spent::Containerd);
        let pid = self
            .containerd
            .start_task(id, "")
            .await
            .map_err(|e| e.context("start pause task"))?;
        clock.mark("pause_task_start", Spent::Containerd);
        self.exits.watch(id);
        crate::metrics::phase("pause_task", started);
        Ok(pid)
    }

    /// Undo what `progress` says exists, in reverse order. Idempotent: every
    /// step tolerates its object being gone already.
    pub(crate) async fn teardown_sandbox(
        &self,
        meta: &SandboxMetadata,
        progress: &Progress,
    ) -> Result<()> {
        let id = &meta.id;
        let mut first_error: Option<Error> = None;
        let mut note = |r: Result<()>, step: &str| {
            if let Err(e) = r {
                tracing::warn!(sandbox = %id, step, error = %e, "sandbox teardown step failed");
                first_error.get_or_insert(e.context(step));
            }
        };
        if progress.task {
            note(self.kill_and_delete_task(id).await, "delete pause task");
        }
        // The snapshot before the record that keeps it from containerd's GC
        // (see `Containerd::remove_snapshot`).
        note(
            crate::container::idmap_mounts::remove(&crate::container::idmap_mounts::dir_of(
                &self.config.state,
                id,
            )),
            "unmount idmapped rootfs",
        );
        if progress.snapshot {
            note(
                self.containerd.remove_snapshot(id).await,
                "remove rootfs snapshot",
            );
        }
        if progress.container {
            note(
                self.containerd.delete_container(id).await,
                "delete pause container",
            );
        }
        if progress.cni {
            if let Some(pod) = pod_network(meta) {
                note(self.cni.teardown(&pod).await, "CNI DEL");
            }
        }
        if let Some(ns) = &progress.netns {
            note(NetNs::remove(ns), "remove network namespace");
        }
        for pin in &progress.pins {
            note(NetNs::remove(pin), "remove pinned namespace");
        }
        let dir = self.config.sandbox_dir(id);
        if progress.dir {
            note(self.remove_image_volumes(id).await, "remove image volumes");
        }
        if progress.shm {
            note(
                crate::sandbox::files::unmount_shm(&dir.join("shm")),
                "unmount /dev/shm",
            );
        }
        if progress.dir {
            note(
                crate::util::persist::remove_dir_all_nofollow(&dir),
                "remove sandbox dir",
            );
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// SIGKILL a task (all its processes), wait for it, delete it. A missing task is fine.
    pub(crate) async fn kill_and_delete_task(&self, id: &str) -> Result<()> {
        if self.containerd.get_task(id).await?.is_none() {
            return Ok(());
        }
        self.containerd.kill_task(id, "", 9, true).await?;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.containerd.wait_task(id, ""),
        )
        .await;
        self.delete_task(id).await
    }

    /// Delete a task. The exit handler may be deleting the same task at the
    /// same moment; an error is fine when the task is gone afterwards.
    pub(crate) async fn delete_task(&self, id: &str) -> Result<()> {
        match self.containerd.delete_task(id).await {
            Ok(_) => Ok(()),
            Err(e) => match self.containerd.get_task(id).await {
                Ok(None) => Ok(()),
                _ => Err(e),
            },
        }
    }
}

/// What `set_up_host_side` made, for the rollback.
#[derive(Debug, Default)]
struct HostSide {
    shm: bool,
    netns: Option<PathBuf>,
    pins: Vec<PathBuf>,
    /// How long the files and /dev/shm took, and the netns.
    files_took: std::time::Duration,
    netns_took: Option<std::time::Duration>,
}

/// The IPC/UTS namespace pins of a pod without a pause container, and the
/// pod's user namespace pin.
pub(crate) fn pin_paths(meta: &SandboxMetadata) -> Vec<PathBuf> {
    meta.ipc_ns_path
        .iter()
        .chain(&meta.uts_ns_path)
        .chain(&meta.user_ns_path)
        .cloned()
        .collect()
}

/// The sandbox's files, its /dev/shm (unless it shares the host's IPC) and
/// its pinned netns (unless on the host network), with the IPC and UTS
/// namespaces when there is no pause container to hold them. Blocking: file
/// writes, a mount and a thread that creates the namespaces.
fn set_up_host_side(
    dir: &std::path::Path,
    meta: &SandboxMetadata,
    made: &mut HostSide,
) -> Result<()> {
    let config = &meta.config;
    let t = std::time::Instant::now();
    let files = crate::sandbox::files::write_sandbox_files(dir, config)
        .map_err(|e| e.context("sandbox files"))?;
    let owner = meta.userns.map(|u| u.root());
    if let Some(owner) = owner {
        crate::sandbox::files::chown_sandbox_files(&files, owner)
            .map_err(|e| e.context("sandbox files"))?;
    }
    if !host_ipc(config) {
        made.shm = true;
        crate::sandbox::files::mount_shm(&files.shm, owner).map_err(|e| e.context("/dev/shm"))?;
    }
    made.files_took = t.elapsed();
    if let Some(path) = meta.netns_path.as_deref() {
        let t = std::time::Instant::now();
        let (parent, name) = (path.parent(), path.file_name().and_then(|n| n.to_str()));
        let (Some(parent), Some(name)) = (parent, name) else {
            return Err(Error::internal(format!("netns path {}", path.display())));
        };
        let extra = ExtraPins {
            ipc: meta.ipc_ns_path.as_deref(),
            uts: meta
                .uts_ns_path
                .as_deref()
                .map(|p| (p, config.hostname.as_str())),
            user: meta.pod_userns(),
        };
        let ns =
            NetNs::create_with(parent, name, extra).map_err(|e| e.context("pod namespaces"))?;
        made.netns = Some(ns.path().to_path_buf());
        made.pins = pin_paths(meta);
        made.netns_took = Some(t.elapsed());
    }
    Ok(())
}
