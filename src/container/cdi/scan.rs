//! Reading the CDI spec dirs: which files there are (and whether they
//! changed since the last read), and what devices they define.

use super::spec::{self, ContainerEdits};
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Default)]
pub(super) struct State {
    /// Stamps of the spec files at the last read; None before the first.
    pub(super) stamps: Option<Vec<FileStamp>>,
    /// Qualified name → its definition.
    pub(super) devices: BTreeMap<String, Defined>,
    pub(super) conflicts: BTreeMap<String, Vec<String>>,
    pub(super) broken: BTreeMap<String, String>,
    /// (file, error) pairs already logged: a broken file is logged once.
    pub(super) logged: HashSet<(String, String)>,
}

/// A device as a spec file defines it.
#[derive(Debug, Clone)]
pub(super) struct Defined {
    /// The spec file.
    pub(super) path: String,
    /// The spec's own edits, applied once whichever of its devices a
    /// container gets.
    pub(super) spec_edits: Option<Arc<ContainerEdits>>,
    pub(super) edits: ContainerEdits,
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
            .filter(|p| spec::is_spec_file(p))
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
    type Defs = BTreeMap<String, (usize, Vec<Defined>)>;
    let mut defs: Defs = BTreeMap::new();
    let mut broken = BTreeMap::new();
    for stamp in stamps {
        let path = stamp.path.display().to_string();
        let spec = match spec::read(&stamp.path) {
            Ok(spec) => spec,
            Err(message) => {
                if state.logged.insert((path.clone(), message.clone())) {
                    tracing::warn!(spec = %path, error = %message, "CDI spec file not read; its devices are unavailable");
                }
                broken.insert(path, message);
                continue;
            }
        };
        let spec_edits = spec.container_edits.map(Arc::new);
        for device in spec.devices {
            let name = format!("{}={}", spec.kind, device.name);
            let def = Defined {
                path: path.clone(),
                spec_edits: spec_edits.clone(),
                edits: device.container_edits,
            };
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
            let specs: Vec<String> = found.into_iter().map(|d| d.path).collect();
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
