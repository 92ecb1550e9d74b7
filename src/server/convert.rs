//! CRI pod sandbox messages ↔ domain sandboxes.

use crate::container::{Container, ContainerState};
use crate::cri;
use crate::sandbox::{Sandbox, SandboxState};
use std::collections::HashMap;

pub(super) fn sandbox_state(s: &Sandbox) -> i32 {
    match s.status().state {
        SandboxState::Ready => cri::PodSandboxState::SandboxReady as i32,
        SandboxState::NotReady => cri::PodSandboxState::SandboxNotready as i32,
    }
}

pub(super) fn pod_sandbox(s: &Sandbox) -> cri::PodSandbox {
    let c = &s.meta.config;
    cri::PodSandbox {
        id: s.id().to_string(),
        metadata: c.metadata.clone(),
        state: sandbox_state(s),
        created_at: s.meta.created_at,
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        runtime_handler: s.meta.runtime_handler.clone(),
    }
}

pub(super) fn pod_sandbox_status(s: &Sandbox) -> cri::PodSandboxStatus {
    let c = &s.meta.config;
    let namespace_options = c
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|sc| sc.namespace_options.clone());
    cri::PodSandboxStatus {
        id: s.id().to_string(),
        metadata: c.metadata.clone(),
        state: sandbox_state(s),
        created_at: s.meta.created_at,
        network: Some(cri::PodSandboxNetworkStatus {
            ip: s.meta.ip.clone(),
            additional_ips: s
                .meta
                .additional_ips
                .iter()
                .map(|ip| cri::PodIp { ip: ip.clone() })
                .collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: namespace_options,
            }),
        }),
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        runtime_handler: s.meta.runtime_handler.clone(),
    }
}

/// `verbose` info: crid's own view of the sandbox, as JSON under "info".
pub(super) fn sandbox_info(s: &Sandbox) -> HashMap<String, String> {
    let status = s.status();
    let info = serde_json::json!({
        "pid": status.pid,
        "netnsPath": s.meta.netns_path,
        "runtimeHandler": s.meta.runtime_handler,
        "config": s.meta.config,
        "podResources": status.resources.as_deref(),
    });
    HashMap::from([("info".to_string(), info.to_string())])
}

pub(super) fn labels_match(
    labels: &HashMap<String, String>,
    selector: &HashMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub(super) fn sandbox_matches(s: &Sandbox, f: &cri::PodSandboxFilter) -> bool {
    (f.id.is_empty() || s.id().starts_with(&f.id))
        && f.state
            .as_ref()
            .is_none_or(|st| st.state == sandbox_state(s))
        && labels_match(&s.meta.config.labels, &f.label_selector)
}

pub(super) fn container_state(c: &Container) -> i32 {
    match c.status().state {
        ContainerState::Created => cri::ContainerState::ContainerCreated as i32,
        ContainerState::Running => cri::ContainerState::ContainerRunning as i32,
        ContainerState::Exited => cri::ContainerState::ContainerExited as i32,
        ContainerState::Unknown => cri::ContainerState::ContainerUnknown as i32,
    }
}

pub(super) fn container(c: &Container) -> cri::Container {
    let cfg = &c.meta.config;
    cri::Container {
        id: c.id().to_string(),
        pod_sandbox_id: c.meta.sandbox_id.clone(),
        metadata: cfg.metadata.clone(),
        image: Some(cri::ImageSpec {
            image: c.meta.image_name.clone(),
            ..Default::default()
        }),
        image_ref: c.meta.image_ref.clone(),
        state: container_state(c),
        created_at: c.meta.created_at,
        labels: cfg.labels.clone(),
        annotations: cfg.annotations.clone(),
        image_id: c.meta.image_ref.clone(),
    }
}

pub(super) fn container_status(c: &Container) -> cri::ContainerStatus {
    let cfg = &c.meta.config;
    let st = c.status();
    cri::ContainerStatus {
        id: c.id().to_string(),
        metadata: cfg.metadata.clone(),
        state: container_state(c),
        created_at: c.meta.created_at,
        started_at: st.started_at,
        finished_at: st.finished_at,
        exit_code: st.exit_code,
        image: Some(cri::ImageSpec {
            image: c.meta.image_name.clone(),
            ..Default::default()
        }),
        image_ref: c.meta.image_ref.clone(),
        reason: st.reason.clone(),
        message: st.message.clone(),
        labels: cfg.labels.clone(),
        annotations: cfg.annotations.clone(),
        mounts: cfg.mounts.clone(),
        log_path: c
            .meta
            .log_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        resources: st
            .resources
            .clone()
            .or_else(|| cfg.linux.as_ref().and_then(|l| l.resources.clone()))
            .map(|linux| cri::ContainerResources {
                linux: Some(linux),
                ..Default::default()
            }),
        image_id: c.meta.image_ref.clone(),
        stop_signal: crate::cri::signal::to_cri(c.stop_signal()) as i32,
        user: c.meta.user.as_ref().map(|u| cri::ContainerUser {
            linux: Some(cri::LinuxContainerUser {
                uid: u.uid.into(),
                gid: u.gid.into(),
                supplemental_groups: u.additional_gids.iter().map(|&g| g.into()).collect(),
            }),
        }),
    }
}

pub(super) fn container_info(c: &Container) -> HashMap<String, String> {
    let st = c.status();
    let info = serde_json::json!({
        "sandboxID": c.meta.sandbox_id,
        "pid": st.pid,
        "oomKilled": st.oom_killed,
        "config": c.meta.config,
        "cdiDevices": c.meta.cdi_devices,
    });
    HashMap::from([("info".to_string(), info.to_string())])
}

pub(super) fn container_matches(c: &Container, f: &cri::ContainerFilter) -> bool {
    (f.id.is_empty() || c.id().starts_with(&f.id))
        && (f.pod_sandbox_id.is_empty() || c.meta.sandbox_id.starts_with(&f.pod_sandbox_id))
        && f.state
            .as_ref()
            .is_none_or(|st| st.state == container_state(c))
        && labels_match(&c.meta.config.labels, &f.label_selector)
}
