//! Which CDI devices a CreateContainer asks for: `cdi_devices`, then the
//! `cdi.k8s.io/*` annotations; names checked for shape only.

use super::CdiError;
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
