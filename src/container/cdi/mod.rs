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
//! - it walks sub-directories, which containerd and CRI-O do not.
//!
//! So this module scans the directories itself, one file at a time. It
//! re-reads them when a CreateContainer needs CDI (or `crid check` lists
//! them) and the directories' listing or any spec file's size, mtime, ctime
//! or inode changed since the last read; otherwise a request costs a
//! `readdir` and a `stat` per spec file.

#[cfg(test)]
mod tests;

use crate::cri::ContainerConfig;
use crate::error::Error;
use container_device_interface as cdi;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Annotations whose values list CDI devices (older device plugins).
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

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

/// The CDI devices a container asks for, in order and each once:
/// `cdi_devices` first, then the `cdi.k8s.io/*` annotations by key, as
/// containerd does.
pub fn requested_devices(config: &ContainerConfig) -> Result<Vec<String>, CdiError> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: &str, origin: &str| {
        if !is_qualified_name(name) {
            return Err(CdiError::InvalidName {
                name: name.to_string(),
                origin: origin.to_string(),
            });
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        Ok(())
    };
    for d in &config.cdi_devices {
        push(&d.name, "cdi_devices")?;
    }
    let mut keys: Vec<&String> = config
        .annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();
    for key in keys {
        for name in config.annotations[key].split(',') {
            push(name.trim(), &format!("annotation {key}"))?;
        }
    }
    Ok(names)
}

/// `vendor/class=name`: vendor a domain-like name, class and name
/// non-empty, no white space. The lookup decides whether it exists.
pub fn is_qualified_name(name: &str) -> bool {
    let Some((kind, device)) = name.split_once('=') else {
        return false;
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let ok = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
    };
    ok(vendor, &['.'])
        && ok(class, &[])
        && ok(device, &['.', ':'])
        && vendor.starts_with(|c: char| c.is_ascii_alphanumeric())
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
        self.edits.clone().apply(spec).map_err(|e| CdiError::Apply {
            names: join(self.devices.iter().map(|d| d.name.as_str())),
            specs: join(self.devices.iter().map(|d| d.spec.as_str())),
            message: format!("{e:#}"),
        })
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

#[derive(Default)]
struct State {
    /// Stamps of the spec files at the last read; None before the first.
    stamps: Option<Vec<FileStamp>>,
    devices: BTreeMap<String, (String, cdi::device::Device)>,
    conflicts: BTreeMap<String, Vec<String>>,
    broken: BTreeMap<String, String>,
    /// (file, error) pairs already logged: a broken file is logged once.
    logged: HashSet<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    priority: usize,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
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

/// Spec files (`*.json`, `*.yaml`, not in sub-directories) of each dir in
/// name order, with what tells a change.
fn stamp_dirs(dirs: &[PathBuf]) -> Vec<FileStamp> {
    let mut stamps = Vec::new();
    for (priority, dir) in dirs.iter().enumerate() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| cdi::utils::is_cdi_spec(p))
            .collect();
        files.sort();
        for path in files {
            let Ok(m) = std::fs::metadata(&path) else {
                continue;
            };
            if !m.is_file() {
                continue;
            }
            stamps.push(FileStamp {
                path,
                priority,
                size: m.size(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
                ino: m.ino(),
            });
        }
    }
    stamps
}

/// Read every spec file anew. A later dir's definition of a device
/// replaces an earlier dir's; two of the same dir are a conflict, and the
/// device is not resolvable. A file that does not parse or validate is
/// skipped (logged once) and breaks only the devices it would define.
fn load(state: &mut State, stamps: &[FileStamp]) {
    type Defs = BTreeMap<String, (usize, Vec<(String, cdi::device::Device)>)>;
    let mut defs: Defs = BTreeMap::new();
    let mut broken = BTreeMap::new();
    for stamp in stamps {
        let path = stamp.path.display().to_string();
        let spec = match cdi::spec::read_spec(&stamp.path, stamp.priority as i32) {
            Ok(spec) => spec,
            Err(e) => {
                let message = format!("{e:#}");
                if state.logged.insert((path.clone(), message.clone())) {
                    tracing::warn!(spec = %path, error = %message, "CDI spec file not read; its devices are unavailable");
                }
                broken.insert(path, message);
                continue;
            }
        };
        for device in spec.devices.values() {
            let name = device.get_qualified_name();
            let def = (path.clone(), device.clone());
            match defs.get_mut(&name) {
                Some((priority, found)) if *priority == stamp.priority => found.push(def),
                _ => {
                    defs.insert(name, (stamp.priority, vec![def]));
                }
            }
        }
    }
    state.devices.clear();
    state.conflicts.clear();
    for (name, (_, mut found)) in defs {
        if found.len() == 1 {
            state.devices.insert(name, found.remove(0));
        } else {
            let specs: Vec<String> = found.into_iter().map(|(p, _)| p).collect();
            let key = (name.clone(), specs.join(", "));
            if state.logged.insert(key) {
                tracing::warn!(device = %name, specs = ?specs, "CDI device defined by more than one spec file of the same priority; it cannot be injected");
            }
            state.conflicts.insert(name, specs);
        }
    }
    state.broken = broken;
    tracing::debug!(
        devices = state.devices.len(),
        conflicts = state.conflicts.len(),
        broken = state.broken.len(),
        "CDI spec dirs read"
    );
}
