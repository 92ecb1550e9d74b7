//! Restart recovery: rebuild the stores from containerd (metadata in
//! container extensions) and crid's status files, then roll back what a
//! crash left half-done (a netns, a CNI allocation, a sandbox dir or a
//! snapshot that no sandbox or container owns). Each fix is logged once.

use crate::container::store::STATUS_FILE;
use crate::container::{Container, ContainerMetadata, ContainerState, ContainerStatus};
use crate::containerd::labels::{KIND_LABEL, METADATA_EXTENSION};
use crate::containerd::{ProcessStatus, OWNER_LABEL, OWNER_VALUE};
use crate::error::Result;
use crate::network::netns::NetNs;
use crate::runtime::Runtime;
use crate::sandbox::{Sandbox, SandboxMetadata, SandboxState, SandboxStatus};
use std::collections::HashSet;
use std::path::Path;

impl Runtime {
    /// Rebuild the index from containerd. Safe to call again: objects
    /// already known are skipped.
    pub async fn recover(&self) -> Result<()> {
        let owned = self
            .containerd
            .list_containers(vec![format!("labels.\"{OWNER_LABEL}\"=={OWNER_VALUE}")])
            .await?;
        let (sandboxes, containers): (Vec<_>, Vec<_>) = owned
            .into_iter()
            .partition(|c| c.labels.get(KIND_LABEL).map(String::as_str) == Some("sandbox"));

        for c in sandboxes {
            if self.sandboxes.get(&c.id).is_ok_and(|s| s.id() == c.id) {
                continue;
            }
            let Some(mut meta) = decode::<SandboxMetadata>(&c.extensions) else {
                tracing::warn!(sandbox = %c.id, "sandbox without crid metadata; removing it");
                let _ = self.kill_and_delete_task(&c.id).await;
                let _ = self.containerd.remove_snapshot(&c.id).await;
                let _ = self.containerd.delete_container(&c.id).await;
                continue;
            };
            // CNI ADD runs alongside the pause container's creation, so the
            // IP is not in the container's metadata: it is in the CNI result
            // cache. No cached result means the network never came up.
            let network_up = match &meta.netns_path {
                None => true,
                Some(_) if !meta.ip.is_empty() => true,
                Some(_) => match self.cni.cached_result(&meta.id) {
                    Some(r) => {
                        meta.ip = r.ip;
                        meta.additional_ips = r.additional_ips;
                        true
                    }
                    None => false,
                },
            };
            let task = if meta.without_pause {
                None
            } else {
                self.containerd.get_task(&c.id).await?
            };
            let (state, pid) = match task {
                // No pause container: ready while its pinned UTS namespace
                // is (StopPodSandbox unpins it first; a reboot drops it).
                _ if meta.without_pause => {
                    let pinned = meta
                        .uts_ns_path
                        .as_deref()
                        .is_some_and(crate::network::netns::is_pinned);
                    if pinned && network_up {
                        (SandboxState::Ready, 0)
                    } else {
                        (SandboxState::NotReady, 0)
                    }
                }
                Some(p) if p.status == ProcessStatus::Running as i32 && network_up => {
                    self.exits.watch(&c.id);
                    (SandboxState::Ready, p.pid)
                }
                Some(p) if p.status == ProcessStatus::Running as i32 => {
                    tracing::warn!(sandbox = %c.id, "sandbox whose network setup did not finish; marking it not ready");
                    self.exits.watch(&c.id);
                    (SandboxState::NotReady, p.pid)
                }
                _ => (SandboxState::NotReady, 0),
            };
            let _ = self.sandboxes.names.reserve(&meta.name_key(), &meta.id);
            let resources = crate::sandbox::resources::load(&self.config.sandbox_dir(&meta.id));
            self.sandboxes.insert(Sandbox::new(
                meta,
                SandboxStatus {
                    state,
                    pid,
                    resources,
                },
            ));
        }

        for c in containers {
            if self.containers.get(&c.id).is_ok_and(|x| x.id() == c.id) {
                continue;
            }
            // A CreateContainer still running (recovery can rerun while
            // RPCs are served) holds the container's name.
            if self.containers.names.holds_id(&c.id) {
                continue;
            }
            let dir = self.container_dir(&c.id);
            let meta = decode::<ContainerMetadata>(&c.extensions);
            let status = match meta {
                Some(_) => self.recorded_status(&c.id, &dir).await?,
                None => None,
            };
            let (Some(meta), Some(status)) = (meta, status) else {
                tracing::warn!(container = %c.id, "container from an unfinished CreateContainer; removing it");
                let _ = self.kill_and_delete_task(&c.id).await;
                let _ = self.containerd.remove_snapshot(&c.id).await;
                let _ = self.containerd.delete_container(&c.id).await;
                let _ = crate::util::persist::remove_dir_all_nofollow(&dir);
                continue;
            };
            let _ = self.containers.names.reserve(&meta.name_key, &meta.id);
            let container = Container::new(meta, status, &dir);
            self.containers.insert(container.clone());
            if container.status().state == ContainerState::Running {
                match self.containerd.get_task(&c.id).await? {
                    Some(p) if p.status == ProcessStatus::Stopped as i32 => {
                        let at = crate::containerd::timestamp_nanos(&p.exited_at);
                        self.container_exited(&container, p.exit_status, at).await;
                    }
                    Some(p) => {
                        container.note_memory_cgroup(p.pid);
                        self.exits.watch(&c.id)
                    }
                    None => {
                        tracing::warn!(container = %c.id, "running container lost its task while crid was down");
                        self.container_exited(&container, 255, 0).await;
                    }
                }
            } else if container.status().state == ContainerState::Created {
                // A crash between Tasks.Create and the status update leaves a task behind.
                if self.containerd.get_task(&c.id).await?.is_some() {
                    let _ = self.kill_and_delete_task(&c.id).await;
                }
            }
        }
        self.remove_orphans().await;
        tracing::info!(
            sandboxes = self.sandboxes.len(),
            containers = self.containers.list().len(),
            "state recovered from containerd"
        );
        Ok(())
    }

    /// The status of a recovered container. CreateContainer writes no
    /// status file: a record whose rootfs snapshot exists is a created
    /// container, one without is an unfinished create (`None`). A status
    /// file that cannot be decoded (a machine crash can leave it empty) is
    /// an exit of unknown cause, as containerd's CRI plugin reports it; the
    /// container's task, if it still has one, is killed and deleted.
    async fn recorded_status(&self, id: &str, dir: &Path) -> Result<Option<ContainerStatus>> {
        match crate::util::persist::read_json::<ContainerStatus>(&dir.join(STATUS_FILE)) {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "unreadable status file; reporting the container as exited with an unknown cause");
                // One stuck task must not stop the recovery of the others.
                if let Err(e) = self.kill_and_delete_task(id).await {
                    tracing::warn!(container = %id, error = %e, "cannot end the task of a container with an unreadable status");
                }
                let status = ContainerStatus {
                    state: ContainerState::Exited,
                    finished_at: crate::util::time::now_nanos(),
                    exit_code: 255,
                    reason: "Unknown".into(),
                    message: "crid could not read the container's status file".into(),
                    ..ContainerStatus::created()
                };
                let _ = crate::util::persist::replace_json(&dir.join(STATUS_FILE), &status);
                return Ok(Some(status));
            }
        }
        match self.containerd.snapshot_mounts(id).await {
            Ok(_) => Ok(Some(ContainerStatus::created())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Remove what a crash left with no owner: netns files (after CNI DEL from
    /// the cache), sandbox and container dirs, crid's snapshots, creation
    /// leases and the leases of pulls a dead crid left unfinished. Objects of a create still in flight (its name is reserved) are
    /// not orphans: recovery may rerun while RPCs are served.
    async fn remove_orphans(&self) {
        let mut sandbox_ids: HashSet<String> = self
            .sandboxes
            .list()
            .iter()
            .map(|s| s.id().to_string())
            .collect();
        let mut container_ids: HashSet<String> = self
            .containers
            .list()
            .iter()
            .map(|c| c.id().to_string())
            .collect();
        let in_flight =
            |id: &str| self.sandboxes.names.holds_id(id) || self.containers.names.holds_id(id);
        let pin_dirs = [
            self.config.netns_dir(),
            self.config.ipc_ns_dir(),
            self.config.uts_ns_dir(),
            self.config.user_ns_dir(),
        ];
        let on_disk = pin_dirs
            .iter()
            .flat_map(|d| dir_names(d))
            .chain(dir_names(&self.config.root.join("sandboxes")))
            .chain(dir_names(&self.config.root.join("containers")));
        for id in on_disk.collect::<Vec<_>>() {
            if in_flight(&id) {
                sandbox_ids.insert(id.clone());
                container_ids.insert(id);
            }
        }

        for id in dir_names(&self.config.netns_dir()) {
            if sandbox_ids.contains(&id) {
                continue;
            }
            tracing::warn!(sandbox = %id, "orphaned network namespace; CNI DEL and remove");
            let path = self.config.netns_dir().join(&id);
            let pod = crate::network::cni::PodNetwork {
                id: id.clone(),
                netns: path.clone(),
                name: String::new(),
                namespace: String::new(),
                uid: String::new(),
                port_mappings: vec![],
                annotations: Default::default(),
            };
            if let Err(e) = self.cni.teardown(&pod).await {
                tracing::warn!(sandbox = %id, error = %e, "CNI DEL of orphan failed");
            }
            let _ = NetNs::remove(&path);
        }
        for dir in &pin_dirs[1..] {
            for id in dir_names(dir) {
                if !sandbox_ids.contains(&id) {
                    tracing::warn!(sandbox = %id, dir = %dir.display(), "orphaned namespace pin; removing");
                    let _ = NetNs::remove(&dir.join(&id));
                }
            }
        }
        for id in dir_names(&self.config.root.join("sandboxes")) {
            if !sandbox_ids.contains(&id) {
                tracing::warn!(sandbox = %id, "orphaned sandbox dir; removing");
                let _ = self.remove_image_volumes(&id).await;
                let dir = self.config.sandbox_dir(&id);
                let _ = crate::sandbox::files::unmount_shm(&dir.join("shm"));
                let _ = crate::util::persist::remove_dir_all_nofollow(&dir);
            }
        }
        for id in dir_names(&self.config.root.join("containers")) {
            if !container_ids.contains(&id) {
                tracing::warn!(container = %id, "orphaned container dir; removing");
                let _ = crate::util::persist::remove_dir_all_nofollow(&self.container_dir(&id));
                let _ =
                    crate::util::persist::remove_dir_all_nofollow(&self.container_state_dir(&id));
            }
        }
        for id in dir_names(&self.config.state.join("idmap")) {
            if !container_ids.contains(&id) && !sandbox_ids.contains(&id) {
                tracing::warn!(id = %id, "orphaned idmapped mounts; unmounting");
                let dir = crate::container::idmap_mounts::dir_of(&self.config.state, &id);
                let _ = crate::container::idmap_mounts::remove(&dir);
            }
        }
        if let Ok(snaps) = self
            .containerd
            .list_snapshots(vec![format!("labels.\"{OWNER_LABEL}\"=={OWNER_VALUE}")])
            .await
        {
            for s in snaps {
                // The image volume views of pods that are gone.
                if let Some(sandbox) =
                    crate::runtime::container_image_volume::sandbox_of_snapshot(&s.name)
                {
                    if !sandbox_ids.contains(sandbox) && !in_flight(sandbox) {
                        tracing::warn!(snapshot = %s.name, "orphaned image volume; removing");
                        let _ = self.containerd.remove_snapshot(&s.name).await;
                    }
                    continue;
                }
                let kind_active = s.kind == crate::containerd::api::snapshots::Kind::Active as i32;
                if kind_active
                    && !sandbox_ids.contains(&s.name)
                    && !container_ids.contains(&s.name)
                    && !in_flight(&s.name)
                {
                    tracing::warn!(snapshot = %s.name, "orphaned snapshot; removing");
                    let _ = self.containerd.remove_snapshot(&s.name).await;
                }
            }
        }
        // Chowned image copies (`container/rootfs.rs`) a crash interrupted: their
        // mount, then (above) their active snapshot went.
        for name in std::fs::read_dir(self.config.root.join("remap"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = name.path();
            let _ = crate::container::rootfs::unmount(&path);
            let _ = std::fs::remove_dir(&path);
        }
        // Creation leases (`container/rootfs.rs`) of creates that never finished.
        if let Ok(leases) = self
            .containerd
            .list_leases(vec![format!("labels.\"{OWNER_LABEL}\"=={OWNER_VALUE}")])
            .await
        {
            for l in leases {
                let Some(id) = super::rootfs::created_for(&l.id) else {
                    continue;
                };
                // A recovered object's container record holds its snapshot
                // now; only a create still running needs its lease.
                let recovered = self.sandboxes.get(id).is_ok_and(|s| s.id() == id)
                    || self.containers.get(id).is_ok_and(|c| c.id() == id);
                if recovered || !in_flight(id) {
                    tracing::warn!(lease = %l.id, "orphaned creation lease; deleting");
                    let _ = self.containerd.delete_lease(&l.id).await;
                }
            }
        }
        // Pull leases, and staged layers, of a crid that died mid-pull.
        self.images.remove_leftover_leases().await;
        self.images.prepare_direct_writes().await;
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    extensions: &std::collections::HashMap<String, prost_types::Any>,
) -> Option<T> {
    let any = extensions.get(METADATA_EXTENSION)?;
    serde_json::from_slice(&any.value)
        .map_err(|e| tracing::warn!(error = %e, "undecodable crid metadata"))
        .ok()
}

fn dir_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default()
}
