//! The CDI spec file: its types (as the CDI specification 0.3.0 to 1.1.0
//! defines them), reading a file (JSON or YAML; every JSON spec is YAML
//! too) and the checks a spec must pass before any of its devices is used.
//! Pure apart from reading the file; applying edits is `edits.rs`.

use super::name::{check_device_name, parse_kind};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The spec versions crid reads, oldest first. 0.1.0 and 0.2.0 exist but
/// no reader accepts them any more (the earliest it accepts is 0.3.0).
const VERSIONS: [&str; 8] = [
    "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];

/// Longest the annotations of a spec or device may be together (keys and
/// values), as for Kubernetes objects.
const MAX_ANNOTATIONS: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    pub cdi_version: String,
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub annotations: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    #[serde(default)]
    pub container_edits: Option<ContainerEdits>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub annotations: BTreeMap<String, String>,
    pub container_edits: ContainerEdits,
}

/// What injecting a device (or any device of a spec) changes in the
/// container's OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerEdits {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub device_nodes: Vec<DeviceNode>,
    /// Since 1.1.0.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub net_devices: Vec<NetDevice>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub mounts: Vec<Mount>,
    /// Since 0.7.0.
    #[serde(default)]
    pub intel_rdt: Option<IntelRdt>,
    /// Since 0.7.0.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host, when not `path` (since 0.5.0).
    #[serde(default)]
    pub host_path: Option<String>,
    /// `b`, `c`, `u` or `p`; read from the host node when not given.
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub file_mode: Option<u32>,
    /// cgroup access (`rwm` when not given, `none` for no access rule).
    #[serde(default)]
    pub permissions: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

impl DeviceNode {
    /// The node on the host this one is made from.
    pub fn host_path(&self) -> &str {
        self.host_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    /// Since 0.4.0.
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    /// One of the OCI hook lists: `prestart`, `createRuntime`, ...
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Seconds.
    #[serde(default)]
    pub timeout: Option<u32>,
}

/// Since 0.7.0; `schemata` and `enableMonitoring` since 1.1.0, which drops
/// `enableCMT` and `enableMBM` (still read from older specs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntelRdt {
    #[serde(default, rename = "closID")]
    pub clos_id: Option<String>,
    #[serde(default)]
    pub l3_cache_schema: Option<String>,
    #[serde(default)]
    pub mem_bw_schema: Option<String>,
    #[serde(default)]
    pub schemata: Option<Vec<String>>,
    #[serde(default)]
    pub enable_monitoring: Option<bool>,
    #[serde(default, rename = "enableCMT")]
    pub enable_cmt: Option<bool>,
    #[serde(default, rename = "enableMBM")]
    pub enable_mbm: Option<bool>,
}

/// A host network interface moved into the container (since 1.1.0).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetDevice {
    pub host_interface_name: String,
    pub name: String,
}

/// A list or map given as `null` is empty (Go's readers take it so).
fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A spec file crid reads: `*.json` or `*.yaml` (any case).
pub fn is_spec_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("yaml"))
}

/// Reads and checks a spec file.
pub fn read(path: &Path) -> Result<Spec, String> {
    let data = std::fs::read(path).map_err(|e| format!("read: {e}"))?;
    parse(&data)
}

/// Parses (JSON or YAML, no unknown fields) and checks a spec.
pub fn parse(data: &[u8]) -> Result<Spec, String> {
    let spec: Spec = serde_yaml::from_slice(data).map_err(|e| format!("parse: {e}"))?;
    spec.check()?;
    Ok(spec)
}

impl Spec {
    /// Everything the CDI specification asks of a spec: a version crid
    /// knows, no field newer than it, a valid kind, valid annotations,
    /// valid edits, and at least one device, each with a valid name of
    /// its own and some edits.
    pub fn check(&self) -> Result<(), String> {
        let version = version_index(&self.cdi_version).ok_or_else(|| {
            format!(
                "unsupported cdiVersion {:?} (crid reads {} to {})",
                self.cdi_version,
                VERSIONS[0],
                VERSIONS[VERSIONS.len() - 1]
            )
        })?;
        let (_, class) = parse_kind(&self.kind)?;
        if let Some((needed, feature)) = self.newest_feature(class) {
            if needed > version {
                return Err(format!(
                    "{feature} needs cdiVersion {} or later, the spec says {}",
                    VERSIONS[needed], self.cdi_version
                ));
            }
        }
        check_annotations("annotations", &self.annotations)?;
        if let Some(edits) = &self.container_edits {
            edits
                .check(version)
                .map_err(|e| format!("containerEdits: {e}"))?;
        }
        if self.devices.is_empty() {
            return Err("no devices".into());
        }
        let mut names = HashSet::new();
        for d in &self.devices {
            check_device_name(&d.name)?;
            if !names.insert(d.name.as_str()) {
                return Err(format!("device {:?} defined twice", d.name));
            }
            let what = |e: String| format!("device {:?}: {e}", d.name);
            check_annotations("annotations", &d.annotations).map_err(what)?;
            if d.container_edits.is_empty() {
                return Err(what("no containerEdits".into()));
            }
            d.container_edits
                .check(version)
                .map_err(|e| what(format!("containerEdits: {e}")))?;
        }
        Ok(())
    }

    /// The newest version a field or name of the spec needs (index into
    /// VERSIONS) and what it is; None when 0.3.0 will do.
    fn newest_feature(&self, class: &str) -> Option<(usize, &'static str)> {
        let at = |v: &str| VERSIONS.iter().position(|k| *k == v).unwrap_or(0);
        let all_edits = || {
            self.container_edits
                .iter()
                .chain(self.devices.iter().map(|d| &d.container_edits))
        };
        let rdt = || all_edits().filter_map(|e| e.intel_rdt.as_ref());
        let checks: [(&str, &'static str, bool); 9] = [
            (
                "1.1.0",
                "netDevices",
                all_edits().any(|e| !e.net_devices.is_empty()),
            ),
            (
                "1.1.0",
                "intelRdt.schemata or enableMonitoring",
                rdt().any(|r| r.schemata.is_some() || r.enable_monitoring.is_some()),
            ),
            ("0.7.0", "intelRdt", rdt().next().is_some()),
            (
                "0.7.0",
                "additionalGids",
                all_edits().any(|e| !e.additional_gids.is_empty()),
            ),
            (
                "0.6.0",
                "annotations",
                !self.annotations.is_empty()
                    || self.devices.iter().any(|d| !d.annotations.is_empty()),
            ),
            ("0.6.0", "a '.' in the kind's class", class.contains('.')),
            (
                "0.5.0",
                "a device name starting with a digit",
                self.devices
                    .iter()
                    .any(|d| d.name.starts_with(|c: char| c.is_ascii_digit())),
            ),
            (
                "0.5.0",
                "deviceNodes[].hostPath",
                all_edits()
                    .flat_map(|e| &e.device_nodes)
                    .any(|n| n.host_path.as_deref().is_some_and(|p| !p.is_empty())),
            ),
            (
                "0.4.0",
                "mounts[].type",
                all_edits()
                    .flat_map(|e| &e.mounts)
                    .any(|m| m.typ.as_deref().is_some_and(|t| !t.is_empty())),
            ),
        ];
        checks
            .into_iter()
            .find(|(_, _, used)| *used)
            .map(|(v, feature, _)| (at(v), feature))
    }
}

/// Index into VERSIONS of `v` (a leading `v` allowed, as in `v0.6.0`).
fn version_index(v: &str) -> Option<usize> {
    let v = v.strip_prefix('v').unwrap_or(v);
    VERSIONS.iter().position(|k| *k == v)
}

/// Annotation keys are Kubernetes qualified names (any case), and all of
/// them with their values fit in 256 KiB.
fn check_annotations(field: &str, annotations: &BTreeMap<String, String>) -> Result<(), String> {
    for key in annotations.keys() {
        crate::cri::validate::qualified_name(field, &key.to_lowercase())
            .map_err(|e| e.to_string())?;
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS {
        return Err(format!(
            "{field}: {size} bytes, more than {MAX_ANNOTATIONS}"
        ));
    }
    Ok(())
}

const HOOK_NAMES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

impl ContainerEdits {
    pub fn is_empty(&self) -> bool {
        self == &ContainerEdits::default()
    }

    /// The edits' own rules; `version` is the spec's (an index into
    /// VERSIONS).
    fn check(&self, version: usize) -> Result<(), String> {
        check_env("env", &self.env)?;
        for n in &self.device_nodes {
            if n.path.is_empty() {
                return Err("deviceNodes: a node without path".into());
            }
            if let Some(t) = n.typ.as_deref() {
                if !["", "b", "c", "u", "p"].contains(&t) {
                    return Err(format!("deviceNodes: {}: invalid type {t:?}", n.path));
                }
            }
            if let Some(p) = n.permissions.as_deref() {
                if p != "none" && !p.chars().all(|c| "rwm".contains(c)) {
                    return Err(format!(
                        "deviceNodes: {}: invalid permissions {p:?}",
                        n.path
                    ));
                }
            }
        }
        for h in &self.hooks {
            if !HOOK_NAMES.contains(&h.hook_name.as_str()) {
                return Err(format!("hooks: unknown hookName {:?}", h.hook_name));
            }
            if h.path.is_empty() {
                return Err(format!("hooks: {} hook without path", h.hook_name));
            }
            check_env(
                &format!("hooks: {} env", h.hook_name),
                h.env.iter().flatten(),
            )?;
        }
        for m in &self.mounts {
            if m.host_path.is_empty() || m.container_path.is_empty() {
                return Err(format!(
                    "mounts: empty hostPath or containerPath ({:?} -> {:?})",
                    m.host_path, m.container_path
                ));
            }
        }
        if let Some(rdt) = &self.intel_rdt {
            if let Some(id) = rdt.clos_id.as_deref() {
                if id.len() >= 4096 || id == "." || id == ".." || id.contains(['/', '\n']) {
                    return Err(format!("intelRdt: invalid closID {id:?}"));
                }
            }
            if version >= version_index("1.1.0").unwrap_or(0)
                && (rdt.enable_cmt.is_some() || rdt.enable_mbm.is_some())
            {
                return Err(
                    "intelRdt: enableCMT and enableMBM are gone in cdiVersion 1.1.0 (use enableMonitoring)"
                        .into(),
                );
            }
        }
        let mut hosts = HashSet::new();
        let mut names = HashSet::new();
        for d in &self.net_devices {
            if d.host_interface_name.is_empty() || d.name.is_empty() {
                return Err("netDevices: empty hostInterfaceName or name".into());
            }
            if !hosts.insert(&d.host_interface_name) {
                return Err(format!(
                    "netDevices: hostInterfaceName {:?} given twice",
                    d.host_interface_name
                ));
            }
            if !names.insert(&d.name) {
                return Err(format!("netDevices: name {:?} given twice", d.name));
            }
        }
        Ok(())
    }
}

/// `NAME=value` with a non-empty name.
fn check_env<'a>(field: &str, env: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    for e in env {
        if !e.split_once('=').is_some_and(|(k, _)| !k.is_empty()) {
            return Err(format!("{field}: {e:?} is not NAME=value"));
        }
    }
    Ok(())
}
