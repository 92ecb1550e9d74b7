//! Cgroup checks: the mode crid detected, the driver (crid's, each runc
//! handler's `systemd_cgroup`, kubelet's `cgroupDriver`, systemd itself),
//! and the controllers whose limits crid could not apply.

use super::{Finding, Group};
use crate::config::{Config, MissingCgroupControllers};
use crate::util::platform::cgroups::{Cgroups, Controller};
use std::path::Path;

const G: Group = Group::Cgroups;

pub fn check(config: &Config, kubelet_config: Option<&Path>) -> Vec<Finding> {
    let host = Cgroups::host();
    let mut out = vec![Finding::ok(G, "cgroup mode", host.mode.to_string())];
    out.push(driver(
        config,
        kubelet_config,
        Path::new("/run/systemd/system").is_dir(),
    ));
    let missing: Vec<Controller> = Controller::ALL
        .into_iter()
        .filter(|c| !host.has(*c))
        .collect();
    out.push(controllers(
        &missing,
        config.missing_cgroup_controllers,
        has_huge_page_sizes(),
    ));
    out
}

/// Everything that must agree on the driver, in the order a fix is best made.
fn driver(config: &Config, kubelet_config: Option<&Path>, systemd_running: bool) -> Finding {
    let check = "cgroup driver";
    let crid = config.cgroup_driver.as_str();
    let want_systemd = crid == "systemd";
    let mut detail = format!("crid: {crid}");
    if want_systemd && !systemd_running {
        return Finding::blocker(
            G,
            check,
            format!("{detail}, but systemd is not running (no /run/systemd/system)"),
            "set cgroup_driver = \"cgroupfs\" in crid's config (and kubelet's cgroupDriver: cgroupfs)".into(),
        );
    }
    for (name, handler) in &config.containerd.runtimes {
        if handler.runs_on_host_kernel() && handler.systemd_cgroup != want_systemd {
            return Finding::blocker(
                G,
                check,
                format!(
                    "{detail}, but handler {name} has systemd_cgroup = {}: runc would read the cgroup path the other way",
                    handler.systemd_cgroup
                ),
                format!(
                    "set systemd_cgroup = {want_systemd} in [containerd.runtimes.{name}] of crid's config"
                ),
            );
        }
    }
    if let Some(path) = kubelet_config {
        let kubelet = match kubelet_cgroup_driver(path) {
            Ok(d) => d,
            Err(e) => {
                return Finding::blocker(
                    G,
                    check,
                    format!("{detail}; kubelet config {}: {e}", path.display()),
                    "give --kubelet-config the path of kubelet's KubeletConfiguration file (its --config)".into(),
                )
            }
        };
        if kubelet != crid {
            return Finding::blocker(
                G,
                check,
                format!("{detail}, kubelet ({}): {kubelet}", path.display()),
                format!(
                    "set cgroupDriver: {crid} in {} (or cgroup_driver = \"{kubelet}\" in crid's config, with systemd_cgroup = {} for each runc handler) and restart kubelet",
                    path.display(),
                    kubelet == "systemd"
                ),
            );
        }
        detail.push_str(&format!(", kubelet: {kubelet} (matches)"));
    } else {
        detail.push_str("; give --kubelet-config to compare kubelet's");
    }
    Finding::ok(G, check, detail)
}

/// `cgroupDriver` of a KubeletConfiguration (YAML or JSON); kubelet's
/// default, `cgroupfs`, when it is not set.
fn kubelet_cgroup_driver(path: &Path) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct KubeletConfiguration {
        kind: Option<String>,
        cgroup_driver: Option<String>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let kc: KubeletConfiguration = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    if let Some(kind) = kc.kind.as_deref().filter(|k| *k != "KubeletConfiguration") {
        return Err(format!("kind is {kind}, not KubeletConfiguration"));
    }
    Ok(kc.cgroup_driver.unwrap_or_else(|| "cgroupfs".into()))
}

/// What the node's cgroups lack. Under `refuse`, the kinds of limit kubelet
/// sends for ordinary pods block: hugepage limits (for every page size the
/// kernel has, on every container) and CFS quota (any cpu limit).
fn controllers(
    missing: &[Controller],
    policy: MissingCgroupControllers,
    huge_page_sizes: bool,
) -> Finding {
    let check = "cgroup controllers";
    if missing.is_empty() {
        return Finding::ok(G, check, "every kind of limit can be applied".into());
    }
    let names: Vec<&str> = missing.iter().map(|c| c.describe()).collect();
    let detail = format!("missing: {}", names.join("; "));
    let sent_by_kubelet = |c: &Controller| {
        *c == Controller::CpuQuota || (*c == Controller::Hugetlb && huge_page_sizes)
    };
    match policy {
        MissingCgroupControllers::Drop => Finding::warn(
            G,
            check,
            format!("{detail}; crid leaves such limits out of specs"),
            "nothing to do if pods may run without them; else enable the controllers (kernel config, cgroup mounts)".into(),
        ),
        MissingCgroupControllers::Refuse if missing.iter().any(sent_by_kubelet) => {
            Finding::blocker(
                G,
                check,
                format!("{detail}; crid refuses containers whose limits need them, and kubelet sends such limits"),
                "set missing_cgroup_controllers = \"drop\" in crid's config, or enable the controllers".into(),
            )
        }
        MissingCgroupControllers::Refuse => Finding::warn(
            G,
            check,
            format!("{detail}; crid refuses containers whose limits need them"),
            "set missing_cgroup_controllers = \"drop\" in crid's config, or enable the controllers".into(),
        ),
    }
}

/// The kernel has huge page sizes: kubelet then sends a (zero) limit for
/// each on every container.
fn has_huge_page_sizes() -> bool {
    std::fs::read_dir("/sys/kernel/mm/hugepages").is_ok_and(|mut d| d.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use super::*;

    fn kubelet_config(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn kubelet_driver_is_read_from_yaml_or_json_and_defaults_to_cgroupfs() {
        let yaml = kubelet_config(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n",
        );
        assert_eq!(kubelet_cgroup_driver(yaml.path()).unwrap(), "systemd");
        let json = kubelet_config(r#"{"kind":"KubeletConfiguration","failSwapOn":false}"#);
        assert_eq!(kubelet_cgroup_driver(json.path()).unwrap(), "cgroupfs");
        let other = kubelet_config("kind: Pod\n");
        assert!(kubelet_cgroup_driver(other.path()).is_err());
    }

    #[test]
    fn driver_mismatches_block() {
        let mut config = Config::default();
        assert_eq!(driver(&config, None, false).outcome, Outcome::Ok);
        let systemd = kubelet_config("kind: KubeletConfiguration\ncgroupDriver: systemd\n");
        let f = driver(&config, Some(systemd.path()), false);
        assert_eq!(f.outcome, Outcome::Blocker);
        assert!(f.fix.unwrap().contains("cgroupDriver: cgroupfs"));
        config.cgroup_driver = "systemd".into();
        assert_eq!(driver(&config, None, false).outcome, Outcome::Blocker);
        let f = driver(&config, None, true);
        assert_eq!(f.outcome, Outcome::Blocker, "handlers still on cgroupfs");
        for h in config.containerd.runtimes.values_mut() {
            h.systemd_cgroup = true;
        }
        assert_eq!(
            driver(&config, Some(systemd.path()), true).outcome,
            Outcome::Ok
        );
    }

    #[test]
    fn missing_controllers_warn_unless_refused_and_sent_by_kubelet() {
        use MissingCgroupControllers::{Drop, Refuse};
        let hugetlb = [Controller::Hugetlb];
        assert_eq!(controllers(&[], Refuse, true).outcome, Outcome::Ok);
        assert_eq!(controllers(&hugetlb, Drop, true).outcome, Outcome::Warn);
        assert_eq!(
            controllers(&hugetlb, Refuse, true).outcome,
            Outcome::Blocker
        );
        assert_eq!(controllers(&hugetlb, Refuse, false).outcome, Outcome::Warn);
        assert_eq!(
            controllers(&[Controller::Rdma], Refuse, true).outcome,
            Outcome::Warn
        );
    }
}
