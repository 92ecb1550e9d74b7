//! Gathers what a container's spec needs (sandbox facts, the image's
//! /etc/passwd and /etc/group, device nodes, a Localhost seccomp profile)
//! and calls the pure generator in `spec/`.

use crate::container::spec::{
    container_spec, stat_device, ContainerSpecInput, DeviceInfo, SandboxFiles,
};
use crate::container::store::ContainerMetadata;
use crate::container::user_files::ImageUserFiles;
use crate::cri::{NamespaceMode, PodSandboxConfig};
use crate::error::{Error, Result};
use crate::image::Loaded;
use crate::runtime::Runtime;
use crate::sandbox::Sandbox;
use std::path::{Path, PathBuf};

impl Runtime {
    pub(crate) async fn container_spec(
        &self,
        meta: &ContainerMetadata,
        sandbox: &Sandbox,
        sandbox_config: &PodSandboxConfig,
        image: &Loaded,
        users: &ImageUserFiles,
    ) -> Result<oci_spec::runtime::Spec> {
        let config = &meta.config;

        let devices = config
            .devices
            .iter()
            .map(|d| stat_device(&d.host_path, &d.container_path, &d.permissions))
            .collect::<Result<Vec<DeviceInfo>>>()?;

        let security = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref());
        let localhost_profile = match security.map(seccomp_localhost_path).transpose()?.flatten() {
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid(format!("seccomp Localhost profile {}: {e}", path.display()))
            })?),
            None => None,
        };
        let target_pid = match security
            .and_then(|s| s.namespace_options.as_ref())
            .filter(|n| n.pid == NamespaceMode::Target as i32)
        {
            Some(n) => {
                let target = self.containers.get(&n.target_id)?;
                Some(target.status().pid)
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        Error::precondition(format!(
                            "target container {} is not running",
                            n.target_id
                        ))
                    })?
                    .into()
            }
            None => None,
        };

        // Image volumes become binds of the pod's view of their image.
        let with_volumes;
        let config = if config.mounts.iter().any(|m| m.image.is_some()) {
            with_volumes = crate::cri::ContainerConfig {
                mounts: self.with_image_volumes(sandbox, &config.mounts).await?,
                ..config.clone()
            };
            &with_volumes
        } else {
            config
        };
        // In a pod's own user namespace, host-path volumes (image volumes
        // too) become binds of idmapped clones of them.
        let idmapped;
        let config = match (&sandbox.meta.user_ns_path, &sandbox.meta.userns) {
            (Some(userns), Some(_)) if config.mounts.iter().any(|m| !m.host_path.is_empty()) => {
                let dir = crate::container::idmap_mounts::dir_of(&self.config.state, &meta.id);
                let (userns, mounts) = (userns.clone(), config.mounts.clone());
                let staged = tokio::task::spawn_blocking(move || {
                    crate::container::idmap_mounts::stage(&dir, &userns, &mounts)
                })
                .await
                .map_err(|e| Error::internal(format!("idmapped volumes: {e}")))??;
                idmapped = crate::cri::ContainerConfig {
                    mounts: staged,
                    ..config.clone()
                };
                &idmapped
            }
            _ => config,
        };
        let dir = self.config.sandbox_dir(sandbox.id());
        let files = crate::sandbox::files::sandbox_files(&dir);
        let host_ipc = crate::sandbox::pod::host_ipc(&sandbox.meta.config);
        let spec = container_spec(&ContainerSpecInput {
            id: &meta.id,
            sandbox_id: sandbox.id(),
            config,
            sandbox_config,
            image: &image.config,
            image_name: &meta.image_name,
            etc_passwd: users.passwd.as_deref(),
            etc_group: users.group.as_deref(),
            sandbox_pid: sandbox.status().pid,
            netns_path: sandbox.meta.netns_path.as_deref(),
            ipc_ns_path: sandbox.meta.ipc_ns_path.as_deref(),
            uts_ns_path: sandbox.meta.uts_ns_path.as_deref(),
            target_pid,
            userns: sandbox.meta.pod_userns(),
            sandbox_files: SandboxFiles {
                hostname: Some(&files.hostname),
                hosts: Some(&files.hosts),
                resolv_conf: Some(&files.resolv),
                shm: (!host_ipc).then_some(files.shm.as_path()),
            },
            termination_message: None,
            devices: &devices,
            cgroup_driver: &self.config.cgroup_driver,
            oom_score_adj_min: crate::util::platform::oom_score_adj_min(),
            cgroups: crate::util::platform::cgroups::Cgroups::host(),
            seccomp_localhost_profile: localhost_profile.as_deref(),
            seccomp_default_when_empty: self.config.seccomp_default_when_empty,
            // No crid AppArmor profile is loaded yet: leave AppArmor to the defaults.
            apparmor_enabled: false,
            recursive_read_only_mounts: self
                .handlers
                .features(&sandbox.meta.runtime_handler)
                .recursive_read_only_mounts,
        })?;
        // Missing host paths of bind mounts are created as directories, as kubelet expects.
        for m in &config.mounts {
            let p = Path::new(&m.host_path);
            if !m.host_path.is_empty() && std::fs::symlink_metadata(p).is_err() {
                std::fs::create_dir_all(p).map_err(|e| {
                    Error::io(format!("create missing mount source {}", p.display()), e)
                })?;
            }
        }
        Ok(spec)
    }
}

/// The Localhost seccomp profile file a security context names, if any.
#[allow(deprecated)] // seccomp_profile_path: still sent by older kubelets
fn seccomp_localhost_path(
    sc: &crate::cri::LinuxContainerSecurityContext,
) -> Result<Option<PathBuf>> {
    use crate::container::spec::{security::seccomp_choice, SeccompChoice};
    Ok(
        match seccomp_choice(
            sc.seccomp.as_ref(),
            &sc.seccomp_profile_path,
            SeccompChoice::RuntimeDefault,
        )? {
            SeccompChoice::Localhost(p) => Some(PathBuf::from(p)),
            _ => None,
        },
    )
}
