//! `crid adopt --apply`: each adoptable pod and container becomes crid's
//! own (records, files, logger); what cannot be adopted is cleaned up as
//! crid cleans up its own orphans, or left alone with its reason.

use super::cri_plugin::{self, PluginDirs};
use super::plan::{Action, ContainerPlan, FoundState, Plan, PodPlan};
use crate::container::store::{ProcessUser, STATUS_FILE};
use crate::container::{ContainerMetadata, ContainerState, ContainerStatus};
use crate::containerd::labels::{KIND_LABEL, METADATA_EXTENSION, SANDBOX_ID_LABEL};
use crate::containerd::{self as ctrd, Container as Record, OWNER_LABEL, OWNER_VALUE};
use crate::error::{Error, Result};
use crate::network::netns::NetNs;
use crate::runtime::Runtime;
use crate::sandbox::SandboxMetadata;
use std::path::{Path, PathBuf};

/// What `--apply` did, one line per object.
#[derive(Debug, Default)]
pub struct Applied {
    pub adopted: usize,
    pub cleaned: usize,
    pub left: usize,
    pub failed: usize,
    pub lines: Vec<String>,
}

impl Applied {
    fn note(&mut self, id: &str, what: &Action, result: Result<()>) {
        let line = match (&result, what) {
            (Err(e), _) => {
                self.failed += 1;
                format!("{id}: FAILED to {what}: {e}")
            }
            (Ok(()), Action::Adopt) => {
                self.adopted += 1;
                format!("{id}: adopted")
            }
            (Ok(()), Action::CleanUp(_)) => {
                self.cleaned += 1;
                format!("{id}: cleaned up")
            }
            (Ok(()), Action::Cannot(why)) => {
                self.left += 1;
                format!("{id}: left alone: {why}")
            }
        };
        self.lines.push(line);
    }
}

impl Runtime {
    /// Carry out `plan`. `libcni_dir`: libcni's cache dir (`/var/lib/cni`).
    pub async fn adopt_apply(&self, plan: &Plan, libcni_dir: &Path) -> Applied {
        let mut applied = Applied::default();
        for pod in &plan.pods {
            // Containers first: the sandbox record is what makes recovery
            // see the pod, so it changes hands last.
            for c in &pod.containers {
                let r = match &c.action {
                    Action::Adopt => self.adopt_container(pod, c, &plan.dirs).await,
                    Action::CleanUp(_) => self.clean_up_container(&c.record.id, &plan.dirs).await,
                    Action::Cannot(_) => Ok(()),
                };
                applied.note(&c.record.id, &c.action, r);
            }
            let r = match &pod.action {
                Action::Adopt => self.adopt_sandbox(pod, &plan.dirs, libcni_dir).await,
                Action::CleanUp(_) => self.clean_up_sandbox(pod, &plan.dirs, libcni_dir).await,
                Action::Cannot(_) => Ok(()),
            };
            applied.note(&pod.record.id, &pod.action, r);
        }
        for c in &plan.strays {
            let r = match &c.action {
                Action::CleanUp(_) => self.clean_up_container(&c.record.id, &plan.dirs).await,
                _ => Ok(()),
            };
            applied.note(&c.record.id, &c.action, r);
        }
        applied
    }

    async fn adopt_container(
        &self,
        pod: &PodPlan,
        c: &ContainerPlan,
        dirs: &PluginDirs,
    ) -> Result<()> {
        let id = &c.record.id;
        let sandbox = crid_sandbox_metadata(pod)?;
        let cri = planned(c.meta.as_ref(), "container metadata")?;
        let config = planned(cri.config.as_ref(), "container config")?.clone();
        let status = planned(c.status.as_ref(), "container status")?;
        let spec = c
            .record
            .spec
            .as_ref()
            .and_then(|s| serde_json::from_slice::<oci_spec::runtime::Spec>(&s.value).ok());
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let meta = ContainerMetadata {
            id: id.clone(),
            sandbox_id: pod.record.id.clone(),
            name_key: crate::container::store::container_name_key(&config, &sandbox.config),
            config,
            image_ref: cri.image_ref.clone(),
            image_name,
            log_path: (!cri.log_path.is_empty()).then(|| PathBuf::from(&cri.log_path)),
            created_at: status.created_at,
            stop_signal: (!cri.stop_signal.is_empty()).then(|| cri.stop_signal.clone()),
            user: spec.as_ref().and_then(ProcessUser::of_spec),
            cdi_devices: vec![],
        };
        // crid's status file; a created container has none (`recovery`).
        let resources = status.resources.as_ref().and_then(|r| r.linux.clone());
        let crid_status = match &c.state {
            FoundState::Created | FoundState::Unknown => None,
            FoundState::Running { pid } => Some(ContainerStatus {
                state: ContainerState::Running,
                pid: *pid,
                started_at: status.started_at,
                resources,
                ..ContainerStatus::created()
            }),
            FoundState::Exited {
                code,
                finished_at,
                reason,
                message,
            } => Some(ContainerStatus {
                state: ContainerState::Exited,
                pid: status.pid,
                started_at: status.started_at,
                finished_at: *finished_at,
                exit_code: *code,
                reason: reason.clone(),
                message: message.clone(),
                oom_killed: reason == "OOMKilled",
                resources,
            }),
        };
        if let Some(s) = &crid_status {
            crate::util::persist::replace_json(&self.container_dir(id).join(STATUS_FILE), s)?;
        }
        let mut fifos_moved = true;
        match (&c.state, &c.task) {
            (FoundState::Running { .. }, Some(task)) => {
                fifos_moved = self.take_over_output(&meta, task).await?
            }
            // Exited while nobody watched: its task goes, as crid's do.
            (FoundState::Exited { .. }, Some(_)) => self.delete_task(id).await?,
            _ => {}
        }
        let metadata = ctrd::any("io.crid.ContainerMetadata", to_json(&meta)?);
        self.take_record(&c.record, &pod.record.id, "container", metadata, dirs)
            .await?;
        if !fifos_moved {
            tracing::warn!(container = %id, dir = %dirs.container_state(id).display(),
                "output FIFOs are on another filesystem than crid's state: their directory stays");
            return remove_dirs(&[dirs.container_root(id)]);
        }
        remove_dirs(&[dirs.container_root(id), dirs.container_state(id)])
    }

    /// Start crid-logger on the running container's output FIFOs, moved into
    /// crid's state directory for it (where crid's own FIFO containers have
    /// theirs), appending to the container's log file. `false` when they
    /// could not be moved (another filesystem) and stay where they are.
    async fn take_over_output(
        &self,
        meta: &ContainerMetadata,
        task: &ctrd::Process,
    ) -> Result<bool> {
        if task.stdout.is_empty() {
            return Ok(true);
        }
        let state_dir = self.container_state_dir(&meta.id);
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| Error::io(format!("create {}", state_dir.display()), e))?;
        let fifos = crate::container::fifo_stdio::OutputFifos::in_dir(&state_dir);
        let stdout = move_fifo(Path::new(&task.stdout), &fifos.stdout)?;
        let stderr = if task.stderr.is_empty() {
            None
        } else {
            Some(move_fifo(Path::new(&task.stderr), &fifos.stderr)?)
        };
        let log = meta.log_path.clone().unwrap_or_else(|| "/dev/null".into());
        crate::container::fifo_stdio::spawn_logger(
            &self.logger_binary(),
            &log,
            &state_dir.join("logger.sock"),
            (&stdout, stderr.as_deref()),
            std::process::Stdio::null(),
        )
        .await?;
        Ok(stdout == fifos.stdout)
    }

    async fn adopt_sandbox(
        &self,
        pod: &PodPlan,
        dirs: &PluginDirs,
        libcni_dir: &Path,
    ) -> Result<()> {
        let id = &pod.record.id;
        let meta = crid_sandbox_metadata(pod)?;
        let dir = self.config.sandbox_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let files = crate::sandbox::files::sandbox_files(&dir);
        let cri_root = dirs.sandbox_root(id);
        for (name, to) in [
            ("hostname", &files.hostname),
            ("hosts", &files.hosts),
            ("resolv.conf", &files.resolv),
        ] {
            let from = cri_root.join(name);
            if from.exists() {
                std::fs::copy(&from, to)
                    .map_err(|e| Error::io(format!("copy {}", from.display()), e))?;
            }
        }
        crate::sandbox::files::take_over_shm(&dirs.sandbox_state(id).join("shm"), &files.shm)?;
        self.take_over_cni_cache(id, libcni_dir)?;
        let metadata = ctrd::any("io.crid.SandboxMetadata", to_json(&meta)?);
        self.take_record(&pod.record, id, "sandbox", metadata, dirs)
            .await?;
        remove_libcni_cache(libcni_dir, id)?;
        remove_dirs(&[cri_root, dirs.sandbox_state(id)])
    }

    /// libcni's cached config and result of the pod network (`eth0`), as
    /// crid's CNI cache entry for the same sandbox id: crid's DEL then runs
    /// the same plugins with the same config, id, ifname and netns.
    fn take_over_cni_cache(&self, id: &str, libcni_dir: &Path) -> Result<()> {
        for path in cri_plugin::libcni_cache_files(libcni_dir, id) {
            let bytes = std::fs::read(&path)
                .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
            let cached = cri_plugin::LibcniCache::decode(&bytes)
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
            if cached.container_id != id || cached.if_name != crate::network::cni::IFNAME {
                continue;
            }
            let list = cached
                .config_list()
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
            self.cni
                .record_add(id, &cached.if_name, list, cached.result)?;
        }
        Ok(())
    }

    /// Point the mounts of a record's spec that come from the plugin's
    /// sandbox directories (hostname, hosts, resolv.conf, /dev/shm) at
    /// crid's sandbox directory, where they now are: a container the plugin
    /// created but never started is started with this spec.
    fn move_spec_mounts(
        &self,
        record: &mut Record,
        sandbox_id: &str,
        dirs: &PluginDirs,
    ) -> Result<()> {
        let Some(spec) = record.spec.as_mut() else {
            return Ok(());
        };
        let mut json: serde_json::Value = serde_json::from_slice(&spec.value)
            .map_err(|e| Error::internal(format!("spec of {}: {e}", record.id)))?;
        let to = self.config.sandbox_dir(sandbox_id);
        let from = [
            dirs.sandbox_root(sandbox_id),
            dirs.sandbox_state(sandbox_id),
        ];
        if rebase_mount_sources(&mut json, &from, &to) {
            spec.value = to_json(&json)?;
        }
        Ok(())
    }

    /// The plugin's record of a sandbox or container (`kind`) becomes
    /// crid's: its kind label and metadata extension are replaced by crid's
    /// labels and `metadata`, and its spec mounts moved; labels, extensions
    /// and spec are replaced whole, in one update, so the record is the
    /// plugin's or crid's, never both.
    async fn take_record(
        &self,
        record: &Record,
        sandbox_id: &str,
        kind: &str,
        metadata: prost_types::Any,
        dirs: &PluginDirs,
    ) -> Result<()> {
        let mut record = record.clone();
        self.move_spec_mounts(&mut record, sandbox_id, dirs)?;
        record.labels.remove(cri_plugin::KIND_LABEL);
        record.labels.insert(OWNER_LABEL.into(), OWNER_VALUE.into());
        record.labels.insert(KIND_LABEL.into(), kind.into());
        record
            .labels
            .insert(SANDBOX_ID_LABEL.into(), sandbox_id.into());
        record.extensions.remove(cri_plugin::SANDBOX_METADATA);
        record.extensions.remove(cri_plugin::CONTAINER_METADATA);
        record
            .extensions
            .insert(METADATA_EXTENSION.into(), metadata);
        self.containerd
            .update_container(
                record,
                vec!["labels".into(), "extensions".into(), "spec".into()],
            )
            .await
            .map(|_| ())
    }

    async fn clean_up_container(&self, id: &str, dirs: &PluginDirs) -> Result<()> {
        self.kill_and_delete_task(id).await?;
        self.containerd.remove_snapshot(id).await?;
        self.containerd.delete_container(id).await?;
        remove_dirs(&[dirs.container_root(id), dirs.container_state(id)])
    }

    /// As crid tears down its own sandboxes: pause task, CNI DEL (from
    /// libcni's cache, through crid's), netns pin, /dev/shm, files, rootfs,
    /// record.
    async fn clean_up_sandbox(
        &self,
        pod: &PodPlan,
        dirs: &PluginDirs,
        libcni_dir: &Path,
    ) -> Result<()> {
        let id = &pod.record.id;
        self.kill_and_delete_task(id).await?;
        if let Ok(meta) = crid_sandbox_metadata(pod) {
            if let Some(net) = crate::sandbox::pod::pod_network(&meta) {
                self.take_over_cni_cache(id, libcni_dir)?;
                self.cni.teardown(&net).await?;
                NetNs::remove(&net.netns)?;
            }
        }
        remove_libcni_cache(libcni_dir, id)?;
        crate::sandbox::files::unmount_shm(&dirs.sandbox_state(id).join("shm"))?;
        remove_dirs(&[dirs.sandbox_root(id), dirs.sandbox_state(id)])?;
        self.containerd.remove_snapshot(id).await?;
        self.containerd.delete_container(id).await
    }
}

/// crid's record of an adoptable pod: the plugin's, field for field.
fn crid_sandbox_metadata(pod: &PodPlan) -> Result<SandboxMetadata> {
    let cri = planned(pod.meta.as_ref(), "sandbox metadata")?;
    let config = planned(cri.config.as_ref(), "pod config")?.clone();
    Ok(SandboxMetadata {
        id: pod.record.id.clone(),
        config,
        netns_path: (!cri.netns_path.is_empty()).then(|| PathBuf::from(&cri.netns_path)),
        runtime_handler: pod.handler.clone(),
        created_at: ctrd::timestamp_nanos(&pod.record.created_at),
        ip: cri.ip.clone(),
        additional_ips: cri.additional_ips.clone().unwrap_or_default(),
        without_pause: false,
        ipc_ns_path: None,
        uts_ns_path: None,
        userns: None,
        user_ns_path: None,
    })
}

/// Replace the `from` prefixes of an OCI spec's mount sources with `to`;
/// whether any changed.
fn rebase_mount_sources(spec: &mut serde_json::Value, from: &[PathBuf], to: &Path) -> bool {
    let mut changed = false;
    let mounts = spec.get_mut("mounts").and_then(|m| m.as_array_mut());
    for source in mounts
        .into_iter()
        .flatten()
        .filter_map(|m| m.get_mut("source"))
    {
        let Some(path) = source.as_str().map(PathBuf::from) else {
            continue;
        };
        if let Some(rest) = from.iter().find_map(|f| path.strip_prefix(f).ok()) {
            *source = to.join(rest).display().to_string().into();
            changed = true;
        }
    }
    changed
}

/// What the plan found for an object it chose to adopt (always there: the
/// plan cleans up objects without it).
fn planned<'a, T>(found: Option<&'a T>, what: &str) -> Result<&'a T> {
    found.ok_or_else(|| Error::internal(format!("no {what} for an adoptable object")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::internal(e.to_string()))
}

/// Rename a FIFO the shim holds open (its open ends are unaffected); where
/// `to` is on another filesystem, the FIFO stays where it is.
fn move_fifo(from: &Path, to: &Path) -> Result<PathBuf> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(to.to_path_buf()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Ok(from.to_path_buf()),
        Err(e) => Err(Error::io(
            format!("move {} to {}", from.display(), to.display()),
            e,
        )),
    }
}

fn remove_libcni_cache(libcni_dir: &Path, id: &str) -> Result<()> {
    for path in cri_plugin::libcni_cache_files(libcni_dir, id) {
        std::fs::remove_file(&path)
            .map_err(|e| Error::io(format!("remove {}", path.display()), e))?;
    }
    Ok(())
}

fn remove_dirs(dirs: &[PathBuf]) -> Result<()> {
    for d in dirs {
        crate::util::persist::remove_dir_all_nofollow(d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_from_the_plugins_sandbox_dirs_move_to_crids() {
        let mut spec = serde_json::json!({"mounts": [
            {"destination": "/etc/hosts", "source": "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/ab/hosts"},
            {"destination": "/dev/shm", "source": "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/ab/shm"},
            {"destination": "/data", "source": "/var/lib/kubelet/pods/x/volumes/data"},
            {"destination": "/proc", "type": "proc"}
        ]});
        let from = [
            PathBuf::from("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/ab"),
            PathBuf::from("/run/containerd/io.containerd.grpc.v1.cri/sandboxes/ab"),
        ];
        assert!(rebase_mount_sources(
            &mut spec,
            &from,
            Path::new("/var/lib/crid/sandboxes/ab")
        ));
        let sources: Vec<_> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["source"].clone())
            .collect();
        assert_eq!(sources[0], "/var/lib/crid/sandboxes/ab/hosts");
        assert_eq!(sources[1], "/var/lib/crid/sandboxes/ab/shm");
        assert_eq!(sources[2], "/var/lib/kubelet/pods/x/volumes/data");
        assert!(sources[3].is_null());
        assert!(!rebase_mount_sources(&mut spec, &from, Path::new("/x")));
    }
}
