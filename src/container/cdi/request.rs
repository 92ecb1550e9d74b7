//! Which CDI devices a CreateContainer asks for: `cdi_devices`, then the
//! `cdi.k8s.io/*` annotations; names checked for shape only (`name.rs`).

use super::{is_qualified_name, CdiError};
use crate::cri::ContainerConfig;

/// Annotations whose values list CDI devices (older device plugins).
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

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
