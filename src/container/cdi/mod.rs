//! Container Device Interface (CDI): resolves the devices a container asks
//! for by qualified name (`vendor.com/class=name`, from
//! `ContainerConfig.cdi_devices` and `cdi.k8s.io/*` annotations) against the
//! CDI spec files of the configured directories, and applies their container
//! edits to an OCI spec crid has already generated. Owns reading the spec
//! directories; knows nothing of containerd or gRPC.
//!
//! The spec files' types and checks are crid's own (`spec.rs`, `name.rs`,
//! `edits.rs`), following the CDI specification 0.3.0 to 1.1.0 and the Go
//! CDI library containerd and CRI-O use. (The `container-device-interface`
//! crate did this before; it always builds a JSON-schema validator with an
//! HTTP client and TLS stack in, which crid does not need: the types and
//! checks here cover what its schema checks.)
//!
//! The directories are scanned one file at a time, like the Go library:
//! - an unreadable file hides only its own devices, not every vendor's;
//! - a device defined by two specs of the same priority (the same
//!   directory) is a conflict and cannot be injected; a later directory's
//!   definition replaces an earlier one's;
//! - errors name the device and the spec file;
//! - sub-directories are skipped.
//!
//! They are re-read when a CreateContainer needs CDI (or `crid check`
//! lists them) and the directories' listing or any spec file's size,
//! mtime, ctime or inode changed since the last read; otherwise a request
//! costs a `readdir` and a `stat` per spec file.

mod edits;
mod name;
mod request;
mod scan;
mod spec;
#[cfg(test)]
mod spec_tests;
#[cfg(test)]
mod tests;

pub use name::is_qualified_name;
pub use request::{requested_devices, ANNOTATION_PREFIX};
use scan::{load, stamp_dirs, State};
use spec::ContainerEdits;

use crate::error::Error;
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

/// Devices resolved for one container, and their combined edits (device
/// nodes already filled from the host).
#[derive(Debug, Default)]
pub struct ResolvedDevices {
    pub devices: Vec<InjectedDevice>,
    edits: ContainerEdits,
}

impl ResolvedDevices {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Apply the edits to a spec crid generated: device nodes and a cgroup
    /// rule allowing each, env (a CDI variable replaces the container's of
    /// the same name), mounts, hooks, additional GIDs, net devices and
    /// intelRdt.
    pub fn apply(&self, spec: &mut Spec) {
        if self.devices.is_empty() {
            return;
        }
        self.edits.apply(spec);
        if !self.edits.mounts.is_empty() {
            sort_mounts_by_depth(spec);
        }
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
            let Some(def) = state.devices.get(name) else {
                return Err(self.unresolvable(&state, name));
            };
            if specs_applied.insert(def.path.clone()) {
                if let Some(edits) = &def.spec_edits {
                    add_edits(&mut resolved.edits, edits, name, &def.path)?;
                }
            }
            add_edits(&mut resolved.edits, &def.edits, name, &def.path)?;
            resolved.devices.push(InjectedDevice {
                name: name.clone(),
                spec: def.path.clone(),
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
                .map(|(name, def)| (name.clone(), def.path.clone()))
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

/// Adds `edits` (of device `name`, spec file `spec`) with their device
/// nodes filled from the host: each must be there, checked before
/// anything is created, so the error names the device and spec.
fn add_edits(
    into: &mut ContainerEdits,
    edits: &ContainerEdits,
    name: &str,
    spec: &str,
) -> Result<(), CdiError> {
    let filled = edits
        .with_host_nodes()
        .map_err(|(node, message)| CdiError::DeviceNode {
            name: name.to_string(),
            spec: spec.to_string(),
            node,
            message,
        })?;
    into.append(&filled);
    Ok(())
}
