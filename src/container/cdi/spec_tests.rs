//! Unit tests of reading and checking CDI spec files, of CDI names, and
//! of applying edits to an OCI spec.

use super::is_qualified_name;
use super::spec::{parse, ContainerEdits, DeviceNode, Mount};
use oci_spec::runtime::{LinuxDeviceType, MountBuilder, ProcessBuilder, SpecBuilder, UserBuilder};
use std::path::Path;

/// A YAML spec of `version` whose one device `dev0` has `edits` (YAML
/// lines at the containerEdits level).
fn one_device(version: &str, kind: &str, edits: &str) -> String {
    let edits: String = edits.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "cdiVersion: \"{version}\"\nkind: {kind}\ndevices:\n  - name: dev0\n    containerEdits:\n{edits}"
    )
}

fn err(text: &str) -> String {
    parse(text.as_bytes()).expect_err(text)
}

#[test]
fn json_and_yaml_specs_read_the_same() {
    let json = r#"{
      "cdiVersion": "0.6.0",
      "kind": "vendor.com/gpu",
      "annotations": {"vendor.com/driver": "1.2"},
      "containerEdits": {"env": ["A=1"]},
      "devices": [{
        "name": "gpu0",
        "containerEdits": {
          "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/null", "type": "c",
                           "major": 1, "minor": 3, "fileMode": 438, "permissions": "rw",
                           "uid": 0, "gid": 44}],
          "mounts": [{"hostPath": "/lib/x", "containerPath": "/lib/x", "type": "bind",
                      "options": ["ro"]}],
          "hooks": [{"hookName": "createContainer", "path": "/bin/hook", "args": ["hook"],
                     "env": ["H=1"], "timeout": 5}]
        }
      }]
    }"#;
    let yaml = r#"
cdiVersion: "0.6.0"
kind: vendor.com/gpu
annotations:
  vendor.com/driver: "1.2"
containerEdits:
  env: [A=1]
devices:
  - name: gpu0
    containerEdits:
      deviceNodes:
        - {path: /dev/gpu0, hostPath: /dev/null, type: c, major: 1, minor: 3,
           fileMode: 438, permissions: rw, uid: 0, gid: 44}
      mounts:
        - {hostPath: /lib/x, containerPath: /lib/x, type: bind, options: [ro]}
      hooks:
        - {hookName: createContainer, path: /bin/hook, args: [hook], env: [H=1], timeout: 5}
"#;
    let from_json = parse(json.as_bytes()).unwrap();
    assert_eq!(from_json, parse(yaml.as_bytes()).unwrap());
    let node = &from_json.devices[0].container_edits.device_nodes[0];
    assert_eq!(node.host_path(), "/dev/null");
    assert_eq!(
        (node.major, node.minor, node.file_mode, node.gid),
        (Some(1), Some(3), Some(0o666), Some(44))
    );
    assert_eq!(
        from_json.devices[0].container_edits.hooks[0].timeout,
        Some(5)
    );
    // null lists read as empty, as the Go library reads them.
    parse(one_device("0.3.0", "v.com/c", "env: [A=1]\nmounts: null").as_bytes()).unwrap();
}

#[test]
fn versions_from_0_3_0_to_1_1_0_are_read() {
    for v in [
        "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0", "v0.6.0",
    ] {
        parse(one_device(v, "vendor.com/gpu", "env: [A=1]").as_bytes()).unwrap();
    }
    for v in ["0.1.0", "0.2.0", "0.7", "1.2.0", "", "latest"] {
        let e = err(&one_device(v, "vendor.com/gpu", "env: [A=1]"));
        assert!(e.contains("unsupported cdiVersion"), "{v}: {e}");
    }
}

#[test]
fn a_field_newer_than_the_declared_version_is_refused() {
    for (version, kind, edits, feature, needs) in [
        (
            "0.3.0",
            "v.com/c",
            "mounts: [{hostPath: /a, containerPath: /a, type: bind}]",
            "mounts[].type",
            "0.4.0",
        ),
        (
            "0.4.0",
            "v.com/c",
            "deviceNodes: [{path: /dev/x, hostPath: /dev/null}]",
            "hostPath",
            "0.5.0",
        ),
        ("0.5.0", "v.com/c.x", "env: [A=1]", "class", "0.6.0"),
        (
            "0.6.0",
            "v.com/c",
            "additionalGids: [5]",
            "additionalGids",
            "0.7.0",
        ),
        (
            "0.6.0",
            "v.com/c",
            "intelRdt: {closID: x}",
            "intelRdt",
            "0.7.0",
        ),
        (
            "1.0.0",
            "v.com/c",
            "netDevices: [{hostInterfaceName: eth1, name: net1}]",
            "netDevices",
            "1.1.0",
        ),
        (
            "1.0.0",
            "v.com/c",
            "intelRdt: {enableMonitoring: true}",
            "enableMonitoring",
            "1.1.0",
        ),
    ] {
        let e = err(&one_device(version, kind, edits));
        assert!(e.contains(feature) && e.contains(needs), "{edits}: {e}");
        parse(one_device(needs, kind, edits).as_bytes()).unwrap();
    }
    let spec = "cdiVersion: 0.4.0\nkind: v.com/c\ndevices:\n  - name: 0dev\n    containerEdits: {env: [A=1]}\n";
    assert!(err(spec).contains("digit"), "{}", err(spec));
    let spec = "cdiVersion: 0.5.0\nkind: v.com/c\nannotations: {a: b}\ndevices:\n  - name: d\n    containerEdits: {env: [A=1]}\n";
    assert!(err(spec).contains("annotations"), "{}", err(spec));

    // enableCMT/enableMBM: read before 1.1.0, gone in it.
    parse(one_device("1.0.0", "v.com/c", "intelRdt: {enableCMT: true}").as_bytes()).unwrap();
    assert!(err(&one_device(
        "1.1.0",
        "v.com/c",
        "intelRdt: {enableMBM: true}"
    ))
    .contains("enableMBM"));
}

#[test]
fn bad_kinds_names_and_edits_are_refused_naming_the_fault() {
    for (kind, want) in [
        ("vendor.com", "invalid kind"),
        ("1vendor.com/gpu", "invalid vendor"),
        ("vendor.com/gpu-", "invalid class"),
        ("vendor.com/g/pu", "invalid class"),
        ("/gpu", "invalid vendor"),
    ] {
        let e = err(&one_device("0.6.0", kind, "env: [A=1]"));
        assert!(e.contains(want), "{kind}: {e}");
    }
    for (edits, want) in [
        ("env: [NOEQUALS]", "NOEQUALS"),
        ("env: [=1]", "NAME=value"),
        ("deviceNodes: [{path: /dev/x, type: z}]", "invalid type"),
        (
            "deviceNodes: [{path: /dev/x, permissions: rwx}]",
            "invalid permissions",
        ),
        ("deviceNodes: [{path: \"\"}]", "without path"),
        (
            "hooks: [{hookName: preStart, path: /h}]",
            "unknown hookName",
        ),
        (
            "hooks: [{hookName: poststop, path: /h, timeout: -1}]",
            "parse",
        ),
        (
            "hooks: [{hookName: poststop, path: /h, env: [X]}]",
            "poststop env",
        ),
        ("mounts: [{hostPath: /a, containerPath: \"\"}]", "mounts"),
        ("intelRdt: {closID: a/b}", "closID"),
        (
            "netDevices: [{hostInterfaceName: e, name: n}, {hostInterfaceName: e, name: m}]",
            "twice",
        ),
        ("env: [A=1]\nunknownField: 1", "unknownField"),
    ] {
        let version = if edits.contains("netDevices") {
            "1.1.0"
        } else {
            "0.7.0"
        };
        let e = err(&one_device(version, "v.com/c", edits));
        assert!(e.contains(want), "{edits}: {e}");
    }
    let no_devices = "cdiVersion: 0.6.0\nkind: v.com/c\ndevices: []\n";
    assert!(err(no_devices).contains("no devices"));
    let twice = "cdiVersion: 0.6.0\nkind: v.com/c\ndevices:\n  - {name: d, containerEdits: {env: [A=1]}}\n  - {name: d, containerEdits: {env: [A=2]}}\n";
    assert!(err(twice).contains("defined twice"), "{}", err(twice));
    let empty = "cdiVersion: 0.6.0\nkind: v.com/c\ndevices:\n  - {name: d, containerEdits: {}}\n";
    assert!(err(empty).contains("no containerEdits"), "{}", err(empty));
    let bad_name = "cdiVersion: 0.6.0\nkind: v.com/c\ndevices:\n  - {name: d-, containerEdits: {env: [A=1]}}\n";
    assert!(
        err(bad_name).contains("invalid device name"),
        "{}",
        err(bad_name)
    );
    let bad_key = "cdiVersion: 0.6.0\nkind: v.com/c\nannotations: {\"-bad\": x}\ndevices:\n  - {name: d, containerEdits: {env: [A=1]}}\n";
    assert!(err(bad_key).contains("qualified name"), "{}", err(bad_key));
}

#[test]
fn qualified_names_follow_the_cdi_parser() {
    for ok in [
        "nvidia.com/gpu=GPU-1a:0",
        "vendor.com/class.sub=0",
        "v/c=d",
        "Vendor_1.com/gpu=all",
    ] {
        assert!(is_qualified_name(ok), "{ok}");
    }
    for bad in [
        "vendor.com/gpu",
        "vendor.com=gpu0",
        "/gpu=0",
        "v.com/gpu=",
        "v.com/g pu=0",
        "1v.com/gpu=0",
        "v.com-/gpu=0",
        "v.com/gpu=dev-",
        "v.com/gpu=:dev",
        "v.com/g/pu=0",
        "v.com/gpu=a=b",
    ] {
        assert!(!is_qualified_name(bad), "{bad}");
    }
}

fn node(path: &str) -> DeviceNode {
    DeviceNode {
        path: path.into(),
        host_path: None,
        typ: None,
        major: None,
        minor: None,
        file_mode: None,
        permissions: None,
        uid: None,
        gid: None,
    }
}

#[test]
fn edits_fill_nodes_from_the_host_unless_the_spec_gives_type_and_major() {
    let edits = ContainerEdits {
        device_nodes: vec![
            DeviceNode {
                host_path: Some("/dev/null".into()),
                ..node("/dev/fake")
            },
            DeviceNode {
                typ: Some("b".into()),
                major: Some(8),
                minor: Some(1),
                ..node("/dev/not-on-this-host")
            },
        ],
        ..Default::default()
    };
    let filled = edits.with_host_nodes().unwrap();
    let n = &filled.device_nodes;
    assert_eq!(
        (n[0].typ.as_deref(), n[0].major, n[0].minor),
        (Some("c"), Some(1), Some(3))
    );
    assert_eq!(n[1], edits.device_nodes[1]);

    let wrong_type = ContainerEdits {
        device_nodes: vec![DeviceNode {
            typ: Some("b".into()),
            ..node("/dev/null")
        }],
        ..Default::default()
    };
    let (path, why) = wrong_type.with_host_nodes().unwrap_err();
    assert_eq!(path, "/dev/null");
    assert!(why.contains("type b"), "{why}");
    let (_, why) = ContainerEdits {
        device_nodes: vec![node("/etc/hostname")],
        ..Default::default()
    }
    .with_host_nodes()
    .unwrap_err();
    assert!(why.contains("not a device node"), "{why}");
}

#[test]
fn apply_replaces_env_nodes_and_mounts_of_the_same_name() {
    let user = UserBuilder::default()
        .uid(1000u32)
        .gid(1000u32)
        .build()
        .unwrap();
    let process = ProcessBuilder::default()
        .user(user)
        .env(vec!["A=image".to_string(), "B=image".to_string()])
        .build()
        .unwrap();
    let old_mount = MountBuilder::default()
        .destination("/data")
        .source("/old")
        .build()
        .unwrap();
    let mut spec = SpecBuilder::default()
        .process(process)
        .mounts(vec![old_mount])
        .build()
        .unwrap();
    let mut edits = ContainerEdits {
        env: vec!["B=cdi".into(), "C=cdi".into()],
        device_nodes: vec![DeviceNode {
            typ: Some("c".into()),
            major: Some(10),
            minor: Some(200),
            permissions: Some("none".into()),
            ..node("/dev/net/tun")
        }],
        mounts: vec![Mount {
            host_path: "/new".into(),
            container_path: "/data".into(),
            typ: None,
            options: Some(vec!["rbind".into()]),
        }],
        additional_gids: vec![0, 44],
        ..Default::default()
    };
    // A second device's edits: the same node path again, and a GID twice.
    edits.append(&ContainerEdits {
        device_nodes: vec![DeviceNode {
            typ: Some("c".into()),
            major: Some(10),
            minor: Some(200),
            uid: Some(0),
            ..node("/dev/net/tun")
        }],
        additional_gids: vec![44],
        ..Default::default()
    });
    edits.apply(&mut spec);

    let process = spec.process().as_ref().unwrap();
    assert_eq!(
        process.env().as_deref().unwrap(),
        ["A=image", "B=cdi", "C=cdi"]
    );
    assert_eq!(process.user().additional_gids().as_deref(), Some(&[44][..]));
    let linux = spec.linux().as_ref().unwrap();
    let devices = linux.devices().as_ref().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].path(), Path::new("/dev/net/tun"));
    assert_eq!(devices[0].typ(), LinuxDeviceType::C);
    // Owned by the container's user unless the spec says otherwise.
    assert_eq!((devices[0].uid(), devices[0].gid()), (Some(0), Some(1000)));
    assert_eq!(
        super::tests::cgroup_rules(&spec)
            .iter()
            .map(|r| r.access().clone())
            .collect::<Vec<_>>(),
        [Some(String::new()), Some("rwm".to_string())]
    );
    let mounts = spec.mounts().as_ref().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].source().as_deref(), Some(Path::new("/new")));
}
