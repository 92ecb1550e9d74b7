//! The pod network as crid's CNI executor loads it: the config file it
//! would pick, and every plugin binary (and IPAM plugin) it names.

use super::{Finding, Group};
use crate::config::Config;
use crate::network::cni::{network_ready, Cni};

const G: Group = Group::Network;

pub fn check(config: &Config) -> Vec<Finding> {
    let conf_dir = config.cni.conf_dir.display().to_string();
    let file = match network_ready(&config.cni.conf_dir) {
        Ok(file) => file,
        Err(reason) => {
            return vec![Finding::warn(
                G,
                "cni config",
                format!("{reason}: crid starts, its Status says NetworkReady=false"),
                format!(
                    "install a network add-on (it writes one), or write a .conflist into {conf_dir}"
                ),
            )]
        }
    };
    // The same check Status makes: the file parses and every plugin it names is installed.
    let cni = Cni::new(&config.cni, config.root.join("cni"));
    let dirs: Vec<String> = config
        .cni
        .bin_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    match cni.status() {
        Ok(()) => vec![Finding::ok(
            G,
            "cni config",
            format!(
                "{}, its plugins installed (bin dirs {})",
                file.display(),
                dirs.join(":")
            ),
        )],
        Err(reason) => vec![Finding::blocker(
            G,
            "cni config",
            format!("{}: {reason}", file.display()),
            format!(
                "install the CNI plugins (apt-get install containernetworking-plugins) or set [cni] bin_dirs to where they are, or fix {}",
                file.display()
            ),
        )],
    }
}
