//! `crid check`, the preflight, against a containerd of the test's own:
//! a node where everything crid needs is in place passes (exit 0) and
//! lists every check; each blocker is named with its fix and exits 1:
//! containerd's socket missing, containerd's own CRI plugin loaded on
//! crid's namespace, a CNI config naming a plugin that is not installed,
//! kubelet on the other cgroup driver, a pod log directory that cannot be
//! written. Nothing is changed on the node (the check only reads, and
//! removes its probe file), so nothing is left to clean but the temp dir.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::pod::bridge_conflist;
use support::*;

/// Every check a full run lists (group/check), on any node crid's tests run on.
const EVERY_CHECK: [&str; 13] = [
    "containerd/containerd",
    "containerd/cri plugin",
    "containerd/snapshotter",
    "containerd/sandbox image",
    "runtimes/handler runc: runc",
    "runtimes/handler runc: shim",
    "runtimes/handler crun: crun",
    "network/cni config",
    "cgroups/cgroup mode",
    "cgroups/cgroup driver",
    "cgroups/cgroup controllers",
    "node/CAP_SYS_RESOURCE",
    "node/pod log dir",
];

/// A node as crid would find it: crid's config pointing at the test's
/// containerd, a bridge conflist whose plugins are installed, an empty
/// CDI spec dir, and a pod log dir, all in a temp dir.
struct Node {
    dir: tempfile::TempDir,
    containerd_address: PathBuf,
    cni_conf_dir: PathBuf,
    pod_log_dir: PathBuf,
}

impl Node {
    fn new(containerd: &TestContainerd) -> Node {
        Self::with_address(&containerd.address)
    }

    fn with_address(address: &Path) -> Node {
        let dir = short_tempdir("pre");
        let cni_conf_dir = dir.path().join("net.d");
        std::fs::create_dir(&cni_conf_dir).unwrap();
        std::fs::write(
            cni_conf_dir.join("10-test.conflist"),
            bridge_conflist("crid-pre0", "10.202.0.0/24", &dir.path().join("ipam")),
        )
        .unwrap();
        let pod_log_dir = dir.path().join("pods");
        std::fs::create_dir(&pod_log_dir).unwrap();
        std::fs::create_dir(dir.path().join("cdi")).unwrap();
        Node {
            containerd_address: address.to_path_buf(),
            cni_conf_dir,
            pod_log_dir,
            dir,
        }
    }

    fn config(&self) -> PathBuf {
        let d = self.dir.path();
        let path = d.join("config.toml");
        let toml = format!(
            r#"root = "{root}"
state = "{state}"
[containerd]
address = "{address}"
[cni]
conf_dir = "{conf}"
[cdi]
spec_dirs = ["{cdi}"]
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            address = self.containerd_address.display(),
            conf = self.cni_conf_dir.display(),
            cdi = d.join("cdi").display(),
        );
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// `crid --config … check --pod-log-dir … ARGS`: exit code and stdout.
    fn check(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_crid"))
            // The node's containerd finds crid's shim there too.
            .env("PATH", support::path_with_crids_shim([]))
            .arg("--config")
            .arg(self.config())
            .arg("check")
            .arg("--pod-log-dir")
            .arg(&self.pod_log_dir)
            .args(args)
            .output()
            .expect("run crid check");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code().unwrap_or(-1), stdout)
    }

    fn kubelet_config(&self, driver: &str) -> String {
        let path = self.dir.path().join(format!("kubelet-{driver}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: {driver}\nfailSwapOn: false\n"
            ),
        )
        .unwrap();
        path.display().to_string()
    }
}

/// The result column of `check` in the table, and its fix line if any.
fn result_of<'a>(table: &'a str, check: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = table.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(&format!("{check} ")))
        .unwrap_or_else(|| panic!("no {check:?} line in:\n{table}"));
    let result = lines[i][check.len()..]
        .split_whitespace()
        .next()
        .unwrap_or("");
    let fix = lines
        .get(i + 1)
        .and_then(|l| l.trim_start().strip_prefix("fix: "));
    (result, fix)
}

/// `check` is a blocker whose fix mentions `fix_names`, and the run exits 1.
fn assert_blocker(code: i32, table: &str, check: &str, fix_names: &str) {
    assert_eq!(code, 1, "a blocker exits 1:\n{table}");
    let (result, fix) = result_of(table, check);
    assert_eq!(result, "BLOCKER", "{check}:\n{table}");
    let fix = fix.unwrap_or_else(|| panic!("{check} has no fix line:\n{table}"));
    assert!(
        fix.contains(fix_names),
        "{check}'s fix {fix:?} lacks {fix_names:?}"
    );
}

#[test]
fn a_ready_node_passes_and_lists_every_check() {
    if missing_tools() {
        return;
    }
    let containerd = TestContainerd::start();
    let node = Node::new(&containerd);
    let kubelet = node.kubelet_config("cgroupfs");
    let (code, table) = node.check(&["--kubelet-config", &kubelet]);
    println!("{table}");
    assert_eq!(code, 0, "no blocker, exit 0:\n{table}");
    for check in EVERY_CHECK {
        let (result, fix) = result_of(&table, check);
        assert!(
            ["ok", "warn"].contains(&result),
            "{check}: {result}\n{table}"
        );
        assert_eq!(
            result == "warn",
            fix.is_some(),
            "a warning names its fix: {check}"
        );
    }
    assert_eq!(result_of(&table, "containerd/cri plugin").0, "ok");
    assert_eq!(result_of(&table, "network/cni config").0, "ok");
    assert!(table.contains("kubelet: cgroupfs (matches)"), "{table}");
    // The CDI section is still there, as `crid check` printed it before.
    assert!(table.contains("CDI: enabled"), "{table}");
    assert!(table.contains("\n0 blocker(s)"), "{table}");
    // The pod log probe is gone again.
    assert_eq!(std::fs::read_dir(&node.pod_log_dir).unwrap().count(), 0);

    // The same as JSON, for scripts.
    let (code, json) = node.check(&["--output", "json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON output");
    assert_eq!(v["blockers"], 0, "{json}");
    let checks = v["checks"].as_array().unwrap();
    // Every check of the table, and the CDI one.
    assert!(checks.len() > EVERY_CHECK.len(), "{json}");
    assert!(checks.iter().any(|c| c["group"] == "containerd"
        && c["check"] == "snapshotter"
        && c["outcome"] == "ok"));
}

#[test]
fn a_missing_containerd_socket_blocks_without_waiting() {
    let dir = short_tempdir("pre");
    let node = Node::with_address(&dir.path().join("no-containerd.sock"));
    let (code, table) = node.check(&["--only", "containerd"]);
    assert_blocker(
        code,
        &table,
        "containerd/containerd",
        "systemctl enable --now containerd",
    );
    assert!(table.contains("no containerd socket at"), "{table}");
    for check in [
        "containerd/cri plugin",
        "containerd/snapshotter",
        "containerd/sandbox image",
    ] {
        assert_eq!(result_of(&table, check).0, "skipped", "{table}");
    }
}

#[test]
fn containerds_own_cri_plugin_on_crids_namespace_blocks() {
    if missing_tools() {
        return;
    }
    let mut containerd = TestContainerd::start_with_cri_plugin(
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n",
    );
    let node = Node::new(&containerd);
    let (code, table) = node.check(&["--only", "containerd"]);
    assert_blocker(
        code,
        &table,
        "containerd/cri plugin",
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]",
    );
    assert!(table.contains("two runtimes on one namespace"), "{table}");

    // Disabled and restarted, as the fix says: the node passes.
    containerd.cri_plugin = false;
    containerd.start_again();
    let (code, table) = node.check(&["--only", "containerd"]);
    assert_eq!(code, 0, "{table}");
    assert_eq!(
        result_of(&table, "containerd/cri plugin").0,
        "ok",
        "{table}"
    );
}

#[test]
fn a_cni_plugin_that_is_not_installed_blocks() {
    let node = Node::with_address(Path::new("/nonexistent"));
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "crid-pre1",
        "plugins": [{"type": "crid-no-such-plugin"}, {"type": "loopback"}]
    });
    std::fs::write(
        node.cni_conf_dir.join("05-missing.conflist"),
        conflist.to_string(),
    )
    .unwrap();
    let (code, table) = node.check(&["--only", "network"]);
    assert_blocker(code, &table, "network/cni config", "bin_dirs");
    assert!(table.contains("crid-no-such-plugin"), "{table}");
}

#[test]
fn kubelet_on_the_other_cgroup_driver_blocks() {
    let node = Node::with_address(Path::new("/nonexistent"));
    let kubelet = node.kubelet_config("systemd");
    let (code, table) = node.check(&["--only", "cgroups", "--kubelet-config", &kubelet]);
    assert_blocker(
        code,
        &table,
        "cgroups/cgroup driver",
        "cgroupDriver: cgroupfs",
    );
    assert!(table.contains("kubelet"), "{table}");
}

#[test]
fn an_unwritable_pod_log_dir_blocks() {
    let mut node = Node::with_address(Path::new("/nonexistent"));
    // Root writes anywhere permissions allow: a path through a regular file
    // is one nobody can write in.
    let file = node.dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    node.pod_log_dir = file.join("pods");
    let (code, table) = node.check(&["--only", "node"]);
    assert_blocker(code, &table, "node/pod log dir", "writable directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

#[test]
fn unknown_check_groups_are_a_usage_error() {
    let node = Node::with_address(Path::new("/nonexistent"));
    let (code, _) = node.check(&["--only", "everything"]);
    assert_eq!(code, 2);
}
