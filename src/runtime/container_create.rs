//! `CreateContainer`: validate, reserve the name, generate the OCI spec,
//! create the containerd container and prepare its rootfs snapshot. Rolls
//! back on failure.

use crate::container::store::container_name_key;
use crate::container::store::{Container, ContainerMetadata, ContainerStatus, ProcessUser};
use crate::container::user_files::ImageUserFiles;
use crate::containerd::labels::{owner_labels, KIND_LABEL, METADATA_EXTENSION, SANDBOX_ID_LABEL};
use crate::containerd::{self as ctrd, Container as CtrdContainer};
use crate::cri::{ContainerConfig, PodSandboxConfig};
use crate::error::{Error, Result};
use crate::metrics::phases::{PhaseClock, Spent};
use crate::runtime::events::ContainerEventKind::Created;
use crate::runtime::handlers::runtime_of;
use crate::runtime::Runtime;
use crate::sandbox::SandboxState;
use crate::util::time::now_nanos;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) fn validate_container_config(config: &ContainerConfig) -> Result<()> {
    crate::cri::validate::container_config(config)
}

/// A container that names a user namespace must name its pod's: its
/// containers share the pod's (or the node's).
fn same_user_namespace(
    config: &ContainerConfig,
    pod: Option<crate::network::userns::PodUserns>,
) -> Result<()> {
    let ns = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    if ns.and_then(|n| n.userns_options.as_ref()).is_none() {
        return Ok(());
    }
    let mine = crate::network::userns::of_namespace_option(ns);
    if mine != pod {
        return Err(Error::invalid(format!(
            "config.linux.security_context.namespace_options.userns_options: {mine:?} is not the pod's user namespace ({pod:?})"
        )));
    }
    Ok(())
}

impl Runtime {
    /// The CDI devices `config` asks for, resolved against the spec dirs
    /// (read on a blocking thread: they may have to be re-read).
    async fn resolve_cdi_devices(
        &self,
        config: &ContainerConfig,
    ) -> Result<crate::container::cdi::ResolvedDevices> {
        use crate::container::cdi::{requested_devices, CdiError};
        let names = requested_devices(config).map_err(CdiError::into_error)?;
        if names.is_empty() {
            return Ok(Default::default());
        }
        let registry = self.cdi.clone();
        tokio::task::spawn_blocking(move || registry.resolve(&names))
            .await
            .map_err(|e| Error::internal(format!("CDI resolution: {e}")))?
            .map_err(CdiError::into_error)
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("containers").join(id)
    }

    /// Volatile per-container files: logger socket, stdin FIFO.
    pub fn container_state_dir(&self, id: &str) -> PathBuf {
        crate::container::store::state_dir(&self.config.state, id)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        mut config: ContainerConfig,
        sandbox_config: Option<PodSandboxConfig>,
    ) -> Result<String> {
        let mut clock = PhaseClock::start("CreateContainer");
        validate_container_config(&config)?;
        crate::container::spec::check_node_applies(
            self.config.missing_cgroup_controllers,
            "config.linux.resources",
            config.linux.as_ref().and_then(|l| l.resources.as_ref()),
        )?;
        let sandbox = self.sandboxes.get(sandbox_id)?;
        if sandbox.status().state != SandboxState::Ready {
            return Err(Error::precondition(format!(
                "pod sandbox {} is not ready",
                sandbox.id()
            )));
        }
        same_user_namespace(&config, sandbox.meta.userns)?;
        let sandbox_config = sandbox_config.unwrap_or_else(|| sandbox.meta.config.clone());
        // CDI devices are resolved (and their host device nodes checked)
        // before anything is created: a name that does not resolve leaves
        // nothing behind. Their edits go on the spec once crid made it.
        let cdi_devices = self.resolve_cdi_devices(&config).await?;
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        clock.mark("validate", Spent::Crid);
        let image = self.images.resolve(&image_name).await?;
        // Each image volume's image id goes in the record (CRI 1.35
        // `image_ref`, reported in ContainerStatus.mounts); an image that
        // is not there is refused when the volume is mounted.
        for spec in config.mounts.iter_mut().filter_map(|m| m.image.as_mut()) {
            if let Ok(volume) = self.images.resolve(&spec.image).await {
                spec.image_ref = volume.id.clone();
            }
        }
        clock.mark("image", Spent::Containerd);

        let id = crate::util::names::new_id();
        let name_key = container_name_key(&config, &sandbox.meta.config);
        self.containers.names.reserve(&name_key, &id)?;

        let log_path = (!config.log_path.is_empty()
            && !sandbox.meta.config.log_directory.is_empty())
        .then(|| Path::new(&sandbox.meta.config.log_directory).join(&config.log_path));
        // The pod's (CRI 1.33+ `stop_signal`, validated), else the image's.
        let stop_signal = crate::cri::signal::cri_signal_name(config.stop_signal)
            .ok()
            .flatten()
            .or_else(|| {
                image
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.stop_signal().clone())
            });
        let meta = ContainerMetadata {
            id: id.clone(),
            sandbox_id: sandbox.id().to_string(),
            config,
            image_ref: image.id.clone(),
            image_name,
            log_path,
            created_at: now_nanos(),
            name_key: name_key.clone(),
            stop_signal,
            user: None,
            cdi_devices: cdi_devices.devices.clone(),
        };
        let dir = self.container_dir(&id);
        // Whether the rootfs was prepared under a creation lease.
        let mut leased = false;
        let result = async {
            // A pod in a user namespace of its own: on the image's copy
            // owned by the mapped ids.
            let parent = self
                .rootfs_parent(&image.chain_id, &image.id, sandbox.meta.userns)
                .await?;
            // The spec needs the image's /etc/passwd and /etc/group. Known
            // from an earlier container of the image, they let the record be
            // written first, which keeps the snapshot from the GC; else the
            // rootfs is prepared first, under a lease, and they are read from it.
            let (users, rootfs) = match self.image_users.get(&image.chain_id) {
                Some(users) => (users, None),
                None => {
                    leased = true;
                    let rootfs = self
                        .prepare_rootfs(&id, &parent)
                        .await
                        .map_err(|e| e.context("rootfs snapshot"))?;
                    let users = std::sync::Arc::new(ImageUserFiles::read(&rootfs));
                    self.image_users.insert(&image.chain_id, users.clone());
                    clock.mark("rootfs", Spent::Containerd);
                    (users, Some(rootfs))
                }
            };
            let mut spec = self
                .container_spec(&meta, &sandbox, &sandbox_config, &image, &users)
                .await?;
            cdi_devices.apply(&mut spec);
            let spec_json = serde_json::to_vec(&spec)
                .map_err(|e| Error::internal(format!("encode spec: {e}")))?;
            let meta = ContainerMetadata {
                user: ProcessUser::of_spec(&spec),
                ..meta.clone()
            };
            let (_, handler) = self.runtime_handler(&sandbox.meta.runtime_handler)?;
            let mut labels = owner_labels();
            labels.insert(KIND_LABEL.into(), "container".into());
            labels.insert(SANDBOX_ID_LABEL.into(), sandbox.id().to_string());
            let mut extensions = HashMap::new();
            extensions.insert(
                METADATA_EXTENSION.to_string(),
                ctrd::any(
                    "io.crid.ContainerMetadata",
                    serde_json::to_vec(&meta).map_err(|e| Error::internal(e.to_string()))?,
                ),
            );
            clock.mark("spec", Spent::Crid);
            self.containerd
                .create_container(CtrdContainer {
                    id: id.clone(),
                    labels,
                    image: image.id.clone(),
                    runtime: Some(runtime_of(&handler)),
                    spec: Some(ctrd::any(ctrd::SPEC_TYPE_URL, spec_json)),
                    snapshotter: self.containerd.snapshotter().to_string(),
                    snapshot_key: id.clone(),
                    extensions,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.context("create container"))?;
            clock.mark("create", Spent::Containerd);
            let rootfs = match rootfs {
                Some(rootfs) => rootfs,
                None => {
                    let rootfs = self
                        .prepare_rootfs_of_record(&id, &parent)
                        .await
                        .map_err(|e| e.context("rootfs snapshot"))?;
                    clock.mark("rootfs", Spent::Containerd);
                    rootfs
                }
            };
            // No status file yet: the record and its rootfs snapshot say
            // the container was created (see `recovery`); StartContainer
            // writes the first one, so a pod start writes one file, not two.
            let container = Container::new(meta.clone(), ContainerStatus::created(), &dir);
            *container.rootfs_mounts.lock().unwrap() = Some(rootfs);
            Ok::<_, Error>(container)
        }
        .await;
        if leased {
            self.release_rootfs_lease(&id).await;
            clock.mark("release_lease", Spent::Containerd);
        }
        clock.finish(&id);
        match result {
            Ok(container) => {
                self.containers.insert(container);
                self.events.publish(Created, &id, sandbox.id());
                tracing::info!(container = %id, sandbox = %sandbox.id(), "container created");
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "CreateContainer failed; rolling back");
                let _ = self.containerd.remove_snapshot(&id).await;
                let _ = self.containerd.delete_container(&id).await;
                let _ = crate::container::idmap_mounts::remove(
                    &crate::container::idmap_mounts::dir_of(&self.config.state, &id),
                );
                let _ = crate::util::persist::remove_dir_all_nofollow(&dir);
                self.containers.names.release(&name_key, &id);
                Err(e)
            }
        }
    }
}
