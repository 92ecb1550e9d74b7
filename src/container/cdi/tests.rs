use super::*;
use crate::config::CdiConfig;
use crate::cri::{CdiDevice, ContainerConfig};
use oci_spec::runtime::{LinuxDeviceType, ProcessBuilder, SpecBuilder};
use std::fs;
use std::path::Path;

/// A spec of kind `vendor.com/gpu` with one device `name` that maps the
/// host's /dev/null as `node` and sets `env`.
fn spec_yaml(name: &str, node: &str, env: &str) -> String {
    format!(
        r#"cdiVersion: "0.7.0"
kind: "vendor.com/gpu"
containerEdits:
  env: ["VENDOR_SPEC=1"]
devices:
  - name: "{name}"
    containerEdits:
      env: ["{env}"]
      deviceNodes:
        - path: "{node}"
          hostPath: "/dev/null"
      mounts:
        - hostPath: "/etc/hostname"
          containerPath: "/vendor/hostname"
          options: ["ro", "bind"]
      additionalGids: [4242]
"#
    )
}

fn registry(dirs: &[&Path]) -> CdiRegistry {
    CdiRegistry::new(&CdiConfig {
        enabled: true,
        spec_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
    })
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// The spec's device cgroup rules.
pub(super) fn cgroup_rules(spec: &Spec) -> &[oci_spec::runtime::LinuxDeviceCgroup] {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    resources
        .and_then(|r| r.devices().as_deref())
        .unwrap_or(&[])
}

fn base_spec() -> Spec {
    let process = ProcessBuilder::default()
        .env(vec!["PATH=/bin".to_string(), "GPU=from-image".to_string()])
        .build()
        .unwrap();
    SpecBuilder::default().process(process).build().unwrap()
}

#[test]
fn requested_devices_come_from_the_field_then_annotations_each_once() {
    let config = ContainerConfig {
        cdi_devices: vec![
            CdiDevice {
                name: "vendor.com/gpu=gpu0".into(),
            },
            CdiDevice {
                name: "vendor.com/gpu=gpu0".into(),
            },
        ],
        annotations: [
            ("cdi.k8s.io/b".to_string(), "vendor.com/nic=n1".to_string()),
            (
                "cdi.k8s.io/a".to_string(),
                "vendor.com/gpu=gpu1, vendor.com/gpu=gpu0".to_string(),
            ),
            ("other".to_string(), "not=a/device".to_string()),
        ]
        .into(),
        ..Default::default()
    };
    assert_eq!(
        requested_devices(&config).unwrap(),
        names(&[
            "vendor.com/gpu=gpu0",
            "vendor.com/gpu=gpu1",
            "vendor.com/nic=n1"
        ])
    );
}

#[test]
fn a_name_that_is_not_qualified_is_an_invalid_argument() {
    let config = ContainerConfig {
        annotations: [("cdi.k8s.io/x".to_string(), "gpu0".to_string())].into(),
        ..Default::default()
    };
    let err = requested_devices(&config).unwrap_err();
    assert!(
        err.to_string().contains("\"gpu0\"") && err.to_string().contains("cdi.k8s.io/x"),
        "{err}"
    );
    assert_eq!(err.into_error().code(), tonic::Code::InvalidArgument);
}

#[test]
fn resolved_device_edits_apply_node_cgroup_rule_env_mount_and_gid() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("vendor.yaml"),
        spec_yaml("gpu0", "/dev/fake0", "GPU=gpu0"),
    )
    .unwrap();
    let reg = registry(&[dir.path()]);
    let resolved = reg.resolve(&names(&["vendor.com/gpu=gpu0"])).unwrap();
    assert_eq!(
        resolved.devices,
        vec![InjectedDevice {
            name: "vendor.com/gpu=gpu0".into(),
            spec: dir.path().join("vendor.yaml").display().to_string(),
        }]
    );
    let mut spec = base_spec();
    resolved.apply(&mut spec);

    let linux = spec.linux().as_ref().unwrap();
    let node = &linux.devices().as_ref().unwrap()[0];
    assert_eq!(node.path(), Path::new("/dev/fake0"));
    assert_eq!(
        (node.typ(), node.major(), node.minor()),
        (LinuxDeviceType::C, 1, 3)
    );
    assert!(cgroup_rules(&spec).iter().any(|r| r.allow()
        && r.typ() == Some(LinuxDeviceType::C)
        && r.major() == Some(1)
        && r.minor() == Some(3)
        && r.access().as_deref() == Some("rwm")));
    let process = spec.process().as_ref().unwrap();
    let env = process.env().as_ref().unwrap();
    assert!(env.contains(&"GPU=gpu0".to_string()), "{env:?}");
    assert!(!env.contains(&"GPU=from-image".to_string()), "{env:?}");
    assert!(env.contains(&"VENDOR_SPEC=1".to_string()), "{env:?}");
    assert!(env.contains(&"PATH=/bin".to_string()), "{env:?}");
    assert_eq!(
        process.user().additional_gids().as_deref(),
        Some(&[4242][..])
    );
    let mounts = spec.mounts().as_ref().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m.destination() == Path::new("/vendor/hostname")));
}

#[test]
fn an_unknown_device_names_itself_the_dirs_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("broken.yaml"), "cdiVersion: [nope").unwrap();
    let reg = registry(&[dir.path()]);
    let err = reg.resolve(&names(&["vendor.com/gpu=gpu9"])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("vendor.com/gpu=gpu9"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("broken.yaml"), "{msg}");
    assert_eq!(err.into_error().code(), tonic::Code::FailedPrecondition);
}

#[test]
fn a_broken_spec_file_does_not_hide_other_specs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a-broken.json"), "{not json").unwrap();
    fs::write(
        dir.path().join("b-vendor.yaml"),
        spec_yaml("gpu0", "/dev/fake0", "GPU=gpu0"),
    )
    .unwrap();
    let reg = registry(&[dir.path()]);
    assert!(reg.resolve(&names(&["vendor.com/gpu=gpu0"])).is_ok());
    let listing = reg.list();
    assert_eq!(
        listing.devices.keys().collect::<Vec<_>>(),
        vec!["vendor.com/gpu=gpu0"]
    );
    assert!(listing
        .broken
        .contains_key(&dir.path().join("a-broken.json").display().to_string()));
}

#[test]
fn two_specs_of_one_dir_defining_a_device_conflict_and_a_later_dir_wins() {
    let low = tempfile::tempdir().unwrap();
    let high = tempfile::tempdir().unwrap();
    fs::write(
        low.path().join("a.yaml"),
        spec_yaml("gpu0", "/dev/fake0", "GPU=a"),
    )
    .unwrap();
    fs::write(
        low.path().join("b.yaml"),
        spec_yaml("gpu0", "/dev/fake0", "GPU=b"),
    )
    .unwrap();
    let reg = registry(&[low.path()]);
    let err = reg.resolve(&names(&["vendor.com/gpu=gpu0"])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("vendor.com/gpu=gpu0") && msg.contains("a.yaml") && msg.contains("b.yaml"),
        "{msg}"
    );
    assert_eq!(err.into_error().code(), tonic::Code::FailedPrecondition);

    fs::write(
        high.path().join("c.yaml"),
        spec_yaml("gpu0", "/dev/fake0", "GPU=c"),
    )
    .unwrap();
    let reg = registry(&[low.path(), high.path()]);
    let resolved = reg.resolve(&names(&["vendor.com/gpu=gpu0"])).unwrap();
    assert!(resolved.devices[0].spec.ends_with("c.yaml"));
}

#[test]
fn specs_written_or_changed_after_a_read_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(&[&dir.path().join("later")]);
    assert!(reg.resolve(&names(&["vendor.com/gpu=gpu0"])).is_err());
    fs::create_dir(dir.path().join("later")).unwrap();
    let file = dir.path().join("later/vendor.json");
    fs::write(&file, spec_yaml("gpu0", "/dev/fake0", "GPU=gpu0")).unwrap();
    assert!(reg.resolve(&names(&["vendor.com/gpu=gpu0"])).is_ok());
    // Rewritten in place (the dir's listing does not change).
    fs::write(&file, spec_yaml("gpu1", "/dev/fake1", "GPU=gpu1")).unwrap();
    assert!(reg.resolve(&names(&["vendor.com/gpu=gpu1"])).is_ok());
    assert!(reg.resolve(&names(&["vendor.com/gpu=gpu0"])).is_err());
}

#[test]
fn a_device_node_missing_on_the_host_names_device_and_spec() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = spec_yaml("gpu0", "/dev/fake0", "GPU=gpu0").replace(
        "hostPath: \"/dev/null\"",
        "hostPath: \"/dev/crid-test-no-such-node\"",
    );
    fs::write(dir.path().join("vendor.yaml"), yaml).unwrap();
    let reg = registry(&[dir.path()]);
    let msg = reg
        .resolve(&names(&["vendor.com/gpu=gpu0"]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("vendor.com/gpu=gpu0")
            && msg.contains("vendor.yaml")
            && msg.contains("/dev/crid-test-no-such-node"),
        "{msg}"
    );
}

#[test]
fn with_cdi_disabled_requests_are_ignored() {
    let reg = CdiRegistry::new(&CdiConfig {
        enabled: false,
        spec_dirs: vec![],
    });
    assert!(reg
        .resolve(&names(&["vendor.com/gpu=gpu0"]))
        .unwrap()
        .is_empty());
}

#[test]
fn hooks_net_devices_and_intel_rdt_edits_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("nic.yaml"),
        r#"cdiVersion: "1.1.0"
kind: "vendor.com/nic"
devices:
  - name: "nic0"
    containerEdits:
      hooks:
        - hookName: "createContainer"
          path: "/usr/bin/vendor-hook"
          args: ["vendor-hook", "nic0"]
      netDevices:
        - hostInterfaceName: "eth7"
          name: "net0"
      intelRdt:
        closID: "vendor-class"
"#,
    )
    .unwrap();
    let reg = registry(&[dir.path()]);
    let resolved = reg.resolve(&names(&["vendor.com/nic=nic0"])).unwrap();
    let mut spec = base_spec();
    resolved.apply(&mut spec);
    let hooks = spec.hooks().as_ref().unwrap();
    let hook = &hooks.create_container().as_ref().unwrap()[0];
    assert_eq!(hook.path(), Path::new("/usr/bin/vendor-hook"));
    let linux = spec.linux().as_ref().unwrap();
    let net = linux.net_devices().as_ref().unwrap();
    assert_eq!(net["eth7"].name().as_deref(), Some("net0"));
    assert_eq!(
        linux.intel_rdt().as_ref().unwrap().clos_id().as_deref(),
        Some("vendor-class")
    );
}

#[test]
fn mounts_are_ordered_parents_first_keeping_the_order_of_equals() {
    use oci_spec::runtime::MountBuilder;
    let mount = |dest: &str| MountBuilder::default().destination(dest).build().unwrap();
    let mut spec = base_spec();
    spec.set_mounts(Some(vec![
        mount("/proc"),
        mount("/var/lib/data/cache"),
        mount("/dev"),
        mount("/var/lib/data"),
        mount("/etc/hosts"),
        mount("/"),
    ]));
    sort_mounts_by_depth(&mut spec);
    let order: Vec<String> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "/",
            "/proc",
            "/dev",
            "/etc/hosts",
            "/var/lib/data",
            "/var/lib/data/cache"
        ]
    );
}
