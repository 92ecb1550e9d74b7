//! CDI devices on a real containerd, without hardware: the test writes CDI
//! spec files into a spec dir of its own (crid's `cdi.spec_dirs`), for a
//! fake vendor device that maps a character device node the test creates
//! with mknod (1:3, like /dev/null), plus an env var, a mount and a GID.

mod support;

use crid::cri::*;
use std::path::{Path, PathBuf};
use support::pod::PodEnv;
use support::*;

const KIND: &str = "test.crid.io/fake";

/// A spec dir, a host device node and a mount source, all temporary.
struct Vendor {
    dir: tempfile::TempDir,
    spec_dir: PathBuf,
    node: PathBuf,
    share: PathBuf,
}

impl Vendor {
    fn new() -> Vendor {
        let dir = short_tempdir("cdi");
        let spec_dir = dir.path().join("specs");
        std::fs::create_dir(&spec_dir).unwrap();
        let node = dir.path().join("fake-null");
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod 1:3");
        let share = dir.path().join("share");
        std::fs::create_dir(&share).unwrap();
        std::fs::write(share.join("hello"), "vendor-mount-content\n").unwrap();
        Vendor {
            dir,
            spec_dir,
            node,
            share,
        }
    }

    fn crid_options(&self) -> CridOptions {
        CridOptions {
            config_toml: Some(format!(
                "[cdi]\nspec_dirs = [\"{}\"]\n",
                self.spec_dir.display()
            )),
            ..Default::default()
        }
    }

    /// A spec defining `device`: node `/dev/crid-fake0` from the host node
    /// (type, major and minor left to the host), env, a read-only mount of
    /// the share at /vendor and additional GID 4242.
    fn spec(&self, device: &str, env: &str) -> String {
        format!(
            r#"{{
  "cdiVersion": "0.7.0",
  "kind": "{KIND}",
  "devices": [{{
    "name": "{device}",
    "containerEdits": {{
      "deviceNodes": [{{"path": "/dev/crid-fake0", "hostPath": "{node}"}}],
      "env": ["{env}"],
      "mounts": [{{"hostPath": "{share}", "containerPath": "/vendor", "options": ["ro", "rbind"]}}],
      "additionalGids": [4242]
    }}
  }}]
}}"#,
            node = self.node.display(),
            share = self.share.display(),
        )
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.spec_dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// What the probe container prints: node major:minor (hex), a write to
/// the node, the env var, the mount's file and the process's groups.
const PROBE: &str = "stat -c 'node=%t:%T' /dev/crid-fake0; \
    echo x > /dev/crid-fake0 && echo write=ok; \
    echo env=$CRID_FAKE_DEVICE; \
    echo mount=$(cat /vendor/hello); \
    echo groups=$(id -G)";

/// Run `cfg` to completion; its id and output lines (CRI log contents).
async fn run_to_end(
    env: &PodEnv,
    sid: &str,
    pod: &PodSandboxConfig,
    cfg: ContainerConfig,
) -> (String, Vec<String>) {
    let log = Path::new(&pod.log_directory).join(&cfg.log_path);
    let cid = env.run(sid, pod, cfg).await;
    let st = env.wait_exited(&cid).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string())
        .collect();
    assert_eq!(st.exit_code, 0, "{lines:?}\n{}", env.crid.log());
    (cid, lines)
}

fn assert_sees_all_four(lines: &[String], env_value: &str) {
    for want in [
        "node=1:3".to_string(),
        "write=ok".to_string(),
        format!("env={env_value}"),
        "mount=vendor-mount-content".to_string(),
    ] {
        assert!(lines.contains(&want), "want {want:?} in {lines:?}");
    }
    let groups = lines
        .iter()
        .find_map(|l| l.strip_prefix("groups="))
        .expect("groups line");
    assert!(
        groups.split(' ').any(|g| g == "4242"),
        "GID 4242 not in {groups:?}"
    );
}

fn probe(env: &PodEnv, name: &str) -> ContainerConfig {
    env.container_config(name, &["/bin/sh", "-c", PROBE])
}

/// containerd's containers and snapshots (lines of `ctr` output).
fn containerd_state(env: &PodEnv) -> (String, String) {
    (
        env.containerd.ctr(&["containers", "ls"]),
        env.containerd.ctr(&["snapshots", "ls"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_from_cdi_devices_field_gives_node_env_mount_and_gid() {
    if missing_tools() {
        return;
    }
    let vendor = Vendor::new();
    let spec_path = vendor.write("fake.json", &vendor.spec("dev0", "CRID_FAKE_DEVICE=dev0"));
    let env = PodEnv::with_options(vendor.crid_options()).await;
    let pod = env.pod_config("cdi-field");
    let sid = env.run_pod(&pod).await;

    let mut cfg = probe(&env, "probe");
    cfg.cdi_devices = vec![CdiDevice {
        name: format!("{KIND}=dev0"),
    }];
    let (cid, lines) = run_to_end(&env, &sid, &pod, cfg).await;
    assert_sees_all_four(&lines, "dev0");

    // Verbose status names the injected device and its spec file.
    let info = env
        .rt()
        .await
        .container_status(ContainerStatusRequest {
            container_id: cid.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let info: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    assert_eq!(
        info["cdiDevices"],
        serde_json::json!([{"name": format!("{KIND}=dev0"), "spec": spec_path.display().to_string()}])
    );

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_from_annotation_gives_the_same() {
    if missing_tools() {
        return;
    }
    let vendor = Vendor::new();
    vendor.write("fake.yaml", &vendor.spec("dev1", "CRID_FAKE_DEVICE=dev1"));
    let env = PodEnv::with_options(vendor.crid_options()).await;
    let pod = env.pod_config("cdi-annotation");
    let sid = env.run_pod(&pod).await;

    let mut cfg = probe(&env, "probe");
    cfg.annotations
        .insert("cdi.k8s.io/fake-plugin_dev1".into(), format!("{KIND}=dev1"));
    let (_, lines) = run_to_end(&env, &sid, &pod, cfg).await;
    assert_sees_all_four(&lines, "dev1");

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_malformed_device_fails_naming_it_and_leaves_nothing() {
    if missing_tools() {
        return;
    }
    let vendor = Vendor::new();
    vendor.write("fake.json", &vendor.spec("dev0", "CRID_FAKE_DEVICE=dev0"));
    let env = PodEnv::with_options(vendor.crid_options()).await;
    let pod = env.pod_config("cdi-unknown");
    let sid = env.run_pod(&pod).await;
    let before = containerd_state(&env);

    let mut cfg = probe(&env, "probe");
    cfg.cdi_devices = vec![
        CdiDevice {
            name: format!("{KIND}=dev0"),
        },
        CdiDevice {
            name: format!("{KIND}=no-such-gpu"),
        },
    ];
    let err = env.create_err(&sid, &pod, cfg).await;
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains(&format!("{KIND}=no-such-gpu"))
            && err
                .message()
                .contains(&vendor.spec_dir.display().to_string()),
        "{}",
        err.message()
    );
    assert_eq!(env.containers().await.len(), 0);
    assert_eq!(
        containerd_state(&env),
        before,
        "containerd objects left behind"
    );

    let mut cfg = probe(&env, "probe");
    cfg.annotations
        .insert("cdi.k8s.io/x".into(), "not-qualified".into());
    let err = env.create_err(&sid, &pod, cfg).await;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("not-qualified"), "{}", err.message());
    assert_eq!(env.containers().await.len(), 0);
    assert_eq!(
        containerd_state(&env),
        before,
        "containerd objects left behind"
    );

    // The name is free again: the same container, fixed, is created.
    let mut cfg = probe(&env, "probe");
    cfg.cdi_devices = vec![CdiDevice {
        name: format!("{KIND}=dev0"),
    }];
    let (_, lines) = run_to_end(&env, &sid, &pod, cfg).await;
    assert_sees_all_four(&lines, "dev0");

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_written_after_start_is_picked_up_and_a_conflict_is_refused() {
    if missing_tools() {
        return;
    }
    let vendor = Vendor::new();
    let env = PodEnv::with_options(vendor.crid_options()).await;
    let pod = env.pod_config("cdi-late");
    let sid = env.run_pod(&pod).await;

    // No spec yet: not resolvable.
    let mut cfg = probe(&env, "probe");
    cfg.cdi_devices = vec![CdiDevice {
        name: format!("{KIND}=late"),
    }];
    let err = env.create_err(&sid, &pod, cfg.clone()).await;
    assert!(err.message().contains(&format!("{KIND}=late")), "{err:?}");

    // A driver writes its spec while crid runs.
    vendor.write("late.yaml", &vendor.spec("late", "CRID_FAKE_DEVICE=late"));
    let (_, lines) = run_to_end(&env, &sid, &pod, cfg).await;
    assert_sees_all_four(&lines, "late");

    // A second file of the same dir defines the same device: a conflict.
    vendor.write(
        "late-again.json",
        &vendor.spec("late", "CRID_FAKE_DEVICE=again"),
    );
    let before = containerd_state(&env);
    let mut cfg = probe(&env, "probe2");
    cfg.cdi_devices = vec![CdiDevice {
        name: format!("{KIND}=late"),
    }];
    let err = env.create_err(&sid, &pod, cfg).await;
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    let msg = err.message();
    assert!(
        msg.contains(&format!("{KIND}=late"))
            && msg.contains("more than one spec file")
            && msg.contains("late.yaml")
            && msg.contains("late-again.json"),
        "{msg}"
    );
    assert_eq!(
        containerd_state(&env),
        before,
        "containerd objects left behind"
    );

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_spec_file_breaks_neither_plain_nor_other_cdi_containers() {
    if missing_tools() {
        return;
    }
    let vendor = Vendor::new();
    vendor.write("broken.yaml", "cdiVersion: [this is not a spec\n");
    vendor.write("fake.json", &vendor.spec("dev0", "CRID_FAKE_DEVICE=dev0"));
    let env = PodEnv::with_options(vendor.crid_options()).await;
    let pod = env.pod_config("cdi-broken");
    let sid = env.run_pod(&pod).await;

    let plain = env.container_config("plain", &["/bin/sh", "-c", "echo plain-ok"]);
    assert_eq!(
        run_to_end(&env, &sid, &pod, plain).await.1,
        vec!["plain-ok"]
    );

    for name in ["probe", "probe2"] {
        let mut cfg = probe(&env, name);
        cfg.cdi_devices = vec![CdiDevice {
            name: format!("{KIND}=dev0"),
        }];
        let (_, lines) = run_to_end(&env, &sid, &pod, cfg).await;
        assert_sees_all_four(&lines, "dev0");
    }
    // Logged once, however often the dir is looked at.
    let log = env.crid.log();
    assert_eq!(log.matches("CDI spec file not read").count(), 1, "{log}");
    assert!(log.contains("broken.yaml"), "{log}");

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

#[test]
fn crid_check_lists_the_cdi_devices_it_sees() {
    let vendor = Vendor::new();
    let good = vendor.write("fake.json", &vendor.spec("dev0", "CRID_FAKE_DEVICE=dev0"));
    let config = vendor.dir.path().join("config.toml");
    std::fs::write(&config, vendor.crid_options().config_toml.unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crid"))
        .arg("--config")
        .arg(&config)
        .args(["check", "--only", "cdi"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("device {KIND}=dev0  ({})", good.display())),
        "{stdout}"
    );

    let broken = vendor.write("broken.yaml", "nope: [");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crid"))
        .arg("--config")
        .arg(&config)
        .args(["check", "--only", "cdi"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("{KIND}=dev0")), "{stdout}");
    assert!(
        stdout.contains(&format!("BROKEN {}", broken.display())),
        "{stdout}"
    );
}

/// CDI edits go on after crid's spec: a privileged container keeps the
/// host's devices and a device the container asked for itself, and gets
/// the CDI device as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_container_keeps_host_and_requested_devices_beside_cdi() {
    if missing_tools() {
        return;
    }
    let vendor = Vendor::new();
    vendor.write("fake.json", &vendor.spec("dev3", "CRID_FAKE_DEVICE=dev3"));
    let env = PodEnv::with_options(vendor.crid_options()).await;
    let mut pod = env.pod_config("cdi-privileged");
    let pod_sc = pod
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    pod_sc.privileged = true;
    let sid = env.run_pod(&pod).await;

    let probe = format!(
        "{PROBE}; test -c /dev/zero && echo host=ok; stat -c 'asked=%t:%T' /dev/asked-zero"
    );
    let mut cfg = env.container_config("probe", &["/bin/sh", "-c", &probe]);
    cfg.cdi_devices = vec![CdiDevice {
        name: format!("{KIND}=dev3"),
    }];
    cfg.devices = vec![Device {
        container_path: "/dev/asked-zero".into(),
        host_path: "/dev/zero".into(),
        permissions: "rwm".into(),
    }];
    let linux = cfg.linux.get_or_insert_with(Default::default);
    linux
        .security_context
        .get_or_insert_with(Default::default)
        .privileged = true;
    let (_, lines) = run_to_end(&env, &sid, &pod, cfg).await;
    assert_sees_all_four(&lines, "dev3");
    for want in ["host=ok", "asked=1:5"] {
        assert!(
            lines.iter().any(|l| l == want),
            "want {want:?} in {lines:?}"
        );
    }

    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}
