//! Foundation: crid serves CRI on a real containerd; Version, Status,
//! socket handling, configuration errors, containerd outages.

mod support;

use crid::cri::*;
use std::time::{Duration, Instant};
use support::*;

fn condition(status: &StatusResponse, kind: &str) -> RuntimeCondition {
    status
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} condition"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_crid_and_api_v1() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let v = crid
        .runtime()
        .await
        .version(VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "crid");
    assert_eq!(v.runtime_api_version, "v1");
    assert_eq!(v.runtime_version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_runtime_ready_and_network_from_cni_config() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut rt = crid.runtime().await;
    let s = rt
        .status(StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    assert!(condition(&s, "RuntimeReady").status);
    let net = condition(&s, "NetworkReady");
    assert!(!net.status, "no CNI config yet");
    assert_eq!(net.reason, "NetworkPluginNotReady");
    assert!(net.message.contains("no network config"), "{}", net.message);
    assert!(s.info.contains_key("config"));

    std::fs::write(
        crid.cni_conf_dir.join("10-test.conflist"),
        r#"{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"loopback"}]}"#,
    )
    .unwrap();
    let s = rt
        .status(StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(condition(&s, "NetworkReady").status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpcs_not_built_yet_answer_unimplemented_naming_the_rpc() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let err = crid
        .runtime()
        .await
        .checkpoint_container(CheckpointContainerRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unimplemented
                | tonic::Code::InvalidArgument
                | tonic::Code::FailedPrecondition
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_outage_flips_runtime_ready_and_recovers() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut rt = crid.runtime().await;
    let mut ctd = ctd;
    ctd.stop();
    let s = rt
        .status(StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let c = condition(&s, "RuntimeReady");
    assert!(!c.status);
    assert!(!c.reason.is_empty() && !c.message.is_empty(), "{c:?}");

    let ctd = ctd.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = rt
            .status(StatusRequest::default())
            .await
            .unwrap()
            .into_inner();
        if condition(&s, "RuntimeReady").status {
            break;
        }
        assert!(Instant::now() < deadline, "RuntimeReady did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(ctd);
}

#[test]
fn malformed_config_exits_non_zero_without_touching_the_socket() {
    let dir = short_tempdir("cfg");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "log_level = \"info\"\n[cni]\nconf_dir = 7\n").unwrap();
    let sock = dir.path().join("crid.sock");
    std::fs::write(&sock, "not a socket").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crid"))
        .arg("--config")
        .arg(&cfg)
        .arg("--listen")
        .arg(format!("unix://{}", sock.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("conf_dir"), "{err}");
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "not a socket");
}

#[test]
fn config_default_prints_a_config_that_loads() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crid"))
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[containerd]") && text.contains("sandbox_image"));
    let dir = short_tempdir("cfg");
    std::fs::write(dir.path().join("c.toml"), &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crid"))
        .arg("--config")
        .arg(dir.path().join("c.toml"))
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_0660_replaces_stale_socket_and_is_removed_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let mut crid = TestCrid::start(&ctd);
    let mode = std::fs::metadata(&crid.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    // A second crid on the same socket refuses while the first one listens.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crid"))
        .arg("--config")
        .arg(crid.dir.path().join("config.toml"))
        .arg("--listen")
        .arg(format!("unix://{}", crid.socket.display()))
        .arg("--containerd-address")
        .arg(&ctd.address)
        .arg("--root")
        .arg(crid.dir.path().join("root2"))
        .arg("--state")
        .arg(crid.dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    crid.stop();
    assert!(!crid.socket.exists(), "socket removed on SIGTERM");
    // A stale socket file (nobody listening) is replaced.
    let _stale = std::os::unix::net::UnixListener::bind(&crid.socket).unwrap();
    drop(_stale);
    crid.restart();
    crid.runtime()
        .await
        .version(VersionRequest::default())
        .await
        .unwrap();
}
