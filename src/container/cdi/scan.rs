//! Reading the CDI spec dirs: which files there are (and whether they
//! changed since the last read), and what devices they define.

use container_device_interface as cdi;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

#[derive(Default)]
pub(super) struct State {
    /// Stamps of the spec files at the last read; None before the first.
    pub(super) stamps: Option<Vec<FileStamp>>,
    pub(super) devices: BTreeMap<String, (String, cdi::device::Device)>,
    pub(super) conflicts: BTreeMap<String, Vec<String>>,
    pub(super) broken: BTreeMap<String, String>,
    /// (file, error) pairs already logged: a broken file is logged once.
    pub(super) logged: HashSet<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileStamp {
    path: PathBuf,
    priority: usize,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

/// Spec files (`*.json`, `*.yaml`, not in sub-directories) of each dir in
/// name order, with what tells a change.
pub(super) fn stamp_dirs(dirs: &[PathBuf]) -> Vec<FileStamp> {
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
pub(super) fn load(state: &mut State, stamps: &[FileStamp]) {
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
