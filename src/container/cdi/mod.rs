//! Container Device Interface (CDI): resolves the devices a container asks
//! for by qualified name (`vendor.com/class=name`, from
//! `ContainerConfig.cdi_devices` and `cdi.k8s.io/*` annotations) against the
//! CDI spec files of the configured directories, and applies their container
//! edits to an OCI spec crid has already generated. Owns reading the spec
//! directories; knows nothing of containerd or gRPC.
//!
//! The `container-device-interface` crate parses and validates each spec
//! file (`read_spec`), fills device nodes from the host and applies edits
//! (`ContainerEdits::apply`). Its `Cache` is not used, because:
//! - one unreadable file fails its whole refresh, so a broken spec of one
//!   vendor would hide every other vendor's devices;
//! - a device defined by two specs of the same priority stays resolvable
//!   (the first one read wins), where the CDI spec calls it a conflict;
//! - its errors name neither the device nor the spec file;
//! - it walks sub-directories, which the Go CDI library (containerd,
//!   CRI-O) skips.
//!
//! So this module scans the directories itself, one file at a time. It
//! re-reads them when a CreateContainer needs CDI (or `crid check` lists
//! them) and the directories' listing or any spec file's size, mtime, ctime
//! or inode changed since the last read; otherwise a request costs a
//! `readdir` and a `stat` per spec file.

mod request;
mod scan;
#[cfg(test)]
mod tests;

pub use request::{is_qualified_name, requested_devices, ANNOTATION_PREFIX};
use scan::{load, stamp_dirs, State};

use crate::error::Error;
use container_device_interface as cdi;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CdiError {
    #[error("invalid CDI device name {name:?} in {origin}: want vendor.com/class=name")]
    InvalidName { name: String, origin: String },
    #[error("CDI device {name} is not defined by any spec file in {dirs}{broken}")]
    Unresolvable {
        name: String,
        dirs: String,
        /// Unreadable spec files in those dirs, which may be the cause.
        broken: String,
    },
    #[error(
        "CDI device {name} is defined by more than one spec file of the same priority: {}",
        specs.join(", ")
    )]
    Conflict { name: String, specs: Vec<String> },
    #[error("CDI device {name} (spec {spec}): device node {node}: {message}")]
    DeviceNode {
        name: String,
        spec: String,
        node: String,
        message: String,
    },
    #[error("CDI devices {names} (specs {specs}): {message}")]
    Apply {
        names: String,
        specs: String,
        message: String,
    },
}

impl CdiError {
    /// A name that is not a qualified name is the request's fault
    /// (InvalidArgument); the rest is the node's state (FailedPrecondition).
    /// (Not a `From` impl: one more `From` for `Error` breaks type
    /// inference of `?` in closures elsewhere.)
    pub fn into_error(self) -> Error {
        match self {
            CdiError::InvalidName { .. } => Error::invalid(self.to_string()),
            _ => Error::precondition(self.to_string()),
        }
    }
}

/// A device injected into a container, kept in its record (ContainerStatus
/// verbose info).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedDevice {
    pub name: String,
    /// The spec file that defined it.
    pub spec: String,
}

/// Devices resolved for one container, and their combined edits.
#[derive(Debug, Default)]
pub struct ResolvedDevices {
    pub devices: Vec<InjectedDevice>,
    edits: cdi::container_edits::ContainerEdits,
}

impl ResolvedDevices {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Apply the edits to a spec crid generated: device nodes (with the
    /// host's type, major and minor unless the spec gives them) and a cgroup
    /// rule allowing each, env, mounts, hooks, additional GIDs, net devices
    /// and intelRdt. A CDI env var replaces the container's of the same name.
    pub fn apply(&self, spec: &mut Spec) -> Result<(), CdiError> {
        if self.devices.is_empty() {
            return Ok(());
        }
        // The crate's generator appends env vars without looking at the
        // spec's own (containerd's, from runtime-tools, replaces them).
        let keys: HashSet<&str> = self
            .edits
            .container_edits
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k))
            .collect();
        if let Some(env) = spec
            .process_mut()
            .as_mut()
            .and_then(|p| p.env_mut().as_mut())
        {
            env.retain(|e| !keys.contains(e.split_once('=').map_or(e.as_str(), |(k, _)| k)));
        }
        self.edits
            .clone()
            .apply(spec)
            .map_err(|e| CdiError::Apply {
                names: join(self.devices.iter().map(|d| d.name.as_str())),
                specs: join(self.devices.iter().map(|d| d.spec.as_str())),
                message: format!("{e:#}"),
            })?;
        if self
            .edits
            .container_edits
            .mounts
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            sort_mounts_by_depth(spec);
        }
        Ok(())
    }
}

/// Orders the spec's mounts so that a parent directory is mounted before
/// what lies under it, keeping the order of mounts of equal depth: CDI
/// mounts are appended after crid's, and one of them may be the parent of
/// a mount crid made (the Go CDI library sorts the same way).
pub(crate) fn sort_mounts_by_depth(spec: &mut Spec) {
    if let Some(mounts) = spec.mounts_mut().as_mut() {
        mounts.sort_by_key(|m| {
            m.destination()
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .count()
        });
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen.join(", ")
}

/// What `crid check` shows: the devices the spec dirs define now.
#[derive(Debug, Default, Serialize)]
pub struct Listing {
    pub enabled: bool,
    pub spec_dirs: Vec<PathBuf>,
    /// Qualified name → spec file.
    pub devices: BTreeMap<String, String>,
    /// Qualified name → the spec files of the same priority defining it.
    pub conflicts: BTreeMap<String, Vec<String>>,
    /// Spec file → why it was not read.
    pub broken: BTreeMap<String, String>,
}

/// `crid check`'s text: one line per device, conflict and broken file.
pub fn render_listing(l: &Listing) -> String {
    use std::fmt::Write;
    let dirs: Vec<String> = l
        .spec_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let mut out = format!(
        "CDI: {} (spec dirs: {})\n",
        if l.enabled { "enabled" } else { "disabled" },
        dirs.join(", ")
    );
    if l.devices.is_empty() {
        out.push_str("  no CDI devices\n");
    }
    for (name, spec) in &l.devices {
        let _ = writeln!(out, "  device {name}  ({spec})");
    }
    for (name, specs) in &l.conflicts {
        let _ = writeln!(out, "  CONFLICT {name}: defined by {}", specs.join(", "));
    }
    for (spec, error) in &l.broken {
        let _ = writeln!(out, "  BROKEN {spec}: {error}");
    }
    out
}

/// The CDI spec directories and what they defined when last read.
pub struct CdiRegistry {
    enabled: bool,
    dirs: Vec<PathBuf>,
    state: Mutex<State>,
}

impl CdiRegistry {
    pub fn new(config: &crate::config::CdiConfig) -> CdiRegistry {
        CdiRegistry {
            enabled: config.enabled,
            dirs: config.spec_dirs.clone(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Resolve `names` (from `requested_devices`) to their devices and
    /// combined edits: each spec's own edits once, then each device's.
    /// Fails on a name no spec defines, one that two specs of the same
    /// priority define, or a device node that is not on the host. With CDI
    /// off, nothing is resolved and the request is ignored, as containerd does.
    pub fn resolve(&self, names: &[String]) -> Result<ResolvedDevices, CdiError> {
        if names.is_empty() {
            return Ok(ResolvedDevices::default());
        }
        if !self.enabled {
            tracing::debug!(devices = ?names, "CDI is disabled: devices not injected");
            return Ok(ResolvedDevices::default());
        }
        let state = self.refresh();
        let mut resolved = ResolvedDevices::default();
        let mut specs_applied: HashSet<String> = HashSet::new();
        for name in names {
            if let Some(specs) = state.conflicts.get(name) {
                return Err(CdiError::Conflict {
                    name: name.clone(),
                    specs: specs.clone(),
                });
            }
            let Some((path, device)) = state.devices.get(name) else {
                return Err(self.unresolvable(&state, name));
            };
            if specs_applied.insert(path.clone()) {
                if let Some(edits) = device.get_spec().edits() {
                    check_device_nodes(name, path, &edits)?;
                    append(&mut resolved.edits, edits, name, path)?;
                }
            }
            let edits = device.edits();
            check_device_nodes(name, path, &edits)?;
            append(&mut resolved.edits, edits, name, path)?;
            resolved.devices.push(InjectedDevice {
                name: name.clone(),
                spec: path.clone(),
            });
        }
        Ok(resolved)
    }

    /// The devices the spec dirs define now (re-read if they changed).
    pub fn list(&self) -> Listing {
        let state = self.refresh();
        Listing {
            enabled: self.enabled,
            spec_dirs: self.dirs.clone(),
            devices: state
                .devices
                .iter()
                .map(|(name, (path, _))| (name.clone(), path.clone()))
                .collect(),
            conflicts: state.conflicts.clone(),
            broken: state.broken.clone(),
        }
    }

    fn unresolvable(&self, state: &State, name: &str) -> CdiError {
        let broken = if state.broken.is_empty() {
            String::new()
        } else {
            let files: Vec<String> = state
                .broken
                .iter()
                .map(|(path, e)| format!("{path}: {e}"))
                .collect();
            format!(" (unreadable spec files: {})", files.join("; "))
        };
        CdiError::Unresolvable {
            name: name.to_string(),
            dirs: join(self.dirs.iter().filter_map(|d| d.to_str())),
            broken,
        }
    }

    /// The state, re-read first when the spec files changed.
    fn refresh(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stamps = stamp_dirs(&self.dirs);
        if state.stamps.as_ref() != Some(&stamps) {
            load(&mut state, &stamps);
            state.stamps = Some(stamps);
        }
        state
    }
}

fn append(
    into: &mut cdi::container_edits::ContainerEdits,
    edits: cdi::container_edits::ContainerEdits,
    name: &str,
    spec: &str,
) -> Result<(), CdiError> {
    into.append(edits).map_err(|e| CdiError::Apply {
        names: name.to_string(),
        specs: spec.to_string(),
        message: format!("{e:#}"),
    })
}

/// Every device node of `edits` must be on the host (its type, major and
/// minor are read from there when the spec leaves them out); checked
/// before anything is created, so the error names the device and spec.
fn check_device_nodes(
    name: &str,
    spec: &str,
    edits: &cdi::container_edits::ContainerEdits,
) -> Result<(), CdiError> {
    for node in edits.container_edits.device_nodes.iter().flatten() {
        let mut filled = cdi::container_edits::DeviceNode { node: node.clone() };
        filled
            .fill_missing_info()
            .map_err(|e| CdiError::DeviceNode {
                name: name.to_string(),
                spec: spec.to_string(),
                node: node_host_path(node),
                message: format!("{e:#}"),
            })?;
    }
    Ok(())
}

/// The node's host path (or path): the crate keeps those fields private.
fn node_host_path(node: &cdi::specs::config::DeviceNode) -> String {
    let v = serde_json::to_value(node).unwrap_or_default();
    v.get("hostPath")
        .or_else(|| v.get("path"))
        .and_then(|p| p.as_str())
        .unwrap_or("?")
        .to_string()
}
