//! `Cni` specified with a recording executor (what is run, in which order,
//! with which env and stdin) and with shell-script plugins.

use super::exec::{Command, Invocation, PluginExec};
use super::*;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

/// Records invocations; answers with a canned result naming the plugin, or
/// fails for the plugin types listed in `fail`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Invocation>>,
    fail: Vec<(Command, &'static str)>,
}

impl Recorder {
    fn calls(&self) -> Vec<(Command, String)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|i| (i.command, i.plugin_type.clone()))
            .collect()
    }
    fn stdin(&self, n: usize) -> Value {
        serde_json::from_slice(&self.calls.lock().unwrap()[n].stdin).unwrap()
    }
}

impl PluginExec for Recorder {
    fn exec<'a>(&'a self, inv: &'a Invocation) -> BoxFuture<'a, Result<Vec<u8>>> {
        self.calls.lock().unwrap().push(inv.clone());
        let fail = self.fail.contains(&(inv.command, inv.plugin_type.as_str()));
        let out = json!({"cniVersion":"1.0.0","by":inv.plugin_type,
            "interfaces":[{"name":"eth0","sandbox":"/x"}],
            "ips":[{"interface":0,"address":"10.88.0.7/24"}]});
        Box::pin(async move {
            if fail {
                return Err(Error::internal(format!(
                    "plugin {} failed",
                    inv.plugin_type
                )));
            }
            Ok(serde_json::to_vec(&out).unwrap())
        })
    }
}

struct Env {
    dir: tempfile::TempDir,
    cfg: CniConfig,
}

impl Env {
    fn new(conflist: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("net.d");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(conf.join("10-test.conflist"), conflist).unwrap();
        let cfg = CniConfig {
            conf_dir: conf,
            bin_dirs: vec![bin, dir.path().join("bin2")],
            plugin_timeout_secs: 30,
        };
        Env { dir, cfg }
    }
    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn cni(&self, rec: &Arc<Recorder>) -> Cni {
        Cni::with_exec(&self.cfg, self.cache_dir(), rec.clone())
    }
    fn plugin(&self, name: &str, body: &str) {
        let p = self.cfg.bin_dirs[0].join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

const LIST: &str = r#"{"cniVersion":"1.0.0","name":"testnet","plugins":[
    {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
    {"type":"portmap","capabilities":{"portMappings":true}},
    {"type":"bandwidth","capabilities":{"bandwidth":true}}]}"#;

fn pod() -> PodNetwork {
    PodNetwork {
        id: "sb1".into(),
        netns: "/run/netns/x".into(),
        name: "web".into(),
        namespace: "default".into(),
        uid: "u-1".into(),
        port_mappings: vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "TCP".into(),
            host_ip: "".into(),
        }],
        annotations: HashMap::from([(
            "kubernetes.io/ingress-bandwidth".to_string(),
            "10M".to_string(),
        )]),
    }
}

use Command::{Add, Check, Del};

#[tokio::test]
async fn add_runs_plugins_in_order_with_cni_env() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    let net = env.cni(&rec).setup(&pod()).await.unwrap();
    assert_eq!(net.ip, "10.88.0.7");
    assert_eq!(
        rec.calls(),
        vec![
            (Add, "bridge".into()),
            (Add, "portmap".into()),
            (Add, "bandwidth".into())
        ]
    );
    let inv = rec.calls.lock().unwrap()[0].clone();
    assert_eq!(inv.env("CNI_COMMAND"), Some("ADD"));
    assert_eq!(inv.env("CNI_CONTAINERID"), Some("sb1"));
    assert_eq!(inv.env("CNI_NETNS"), Some("/run/netns/x"));
    assert_eq!(inv.env("CNI_IFNAME"), Some("eth0"));
    assert_eq!(
        inv.env("CNI_ARGS"),
        Some("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u-1")
    );
    let path = format!(
        "{}:{}",
        env.cfg.bin_dirs[0].display(),
        env.cfg.bin_dirs[1].display()
    );
    assert_eq!(inv.env("CNI_PATH"), Some(path.as_str()));
}

#[tokio::test]
async fn add_chains_prev_result_and_injects_declared_runtime_config() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    env.cni(&rec).setup(&pod()).await.unwrap();
    let bridge = rec.stdin(0);
    assert_eq!(
        (bridge["name"].as_str(), bridge["cniVersion"].as_str()),
        (Some("testnet"), Some("1.0.0"))
    );
    assert!(bridge.get("prevResult").is_none() && bridge.get("runtimeConfig").is_none());
    let portmap = rec.stdin(1);
    assert_eq!(portmap["prevResult"]["by"], "bridge");
    assert_eq!(
        portmap["runtimeConfig"],
        json!({"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]})
    );
    let bw = rec.stdin(2);
    assert_eq!(bw["prevResult"]["by"], "portmap");
    assert_eq!(
        bw["runtimeConfig"],
        json!({"bandwidth":{"ingressRate":10_000_000u64,"ingressBurst":u32::MAX}})
    );
}

#[tokio::test]
async fn del_runs_in_reverse_order_with_cached_result_and_clears_cache() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    let cni = env.cni(&rec);
    cni.setup(&pod()).await.unwrap();
    assert_eq!(cni.cached_result("sb1").unwrap().ip, "10.88.0.7");
    rec.calls.lock().unwrap().clear();
    cni.teardown(&pod()).await.unwrap();
    assert_eq!(
        rec.calls(),
        vec![
            (Del, "bandwidth".into()),
            (Del, "portmap".into()),
            (Del, "bridge".into())
        ]
    );
    assert_eq!(rec.stdin(0)["prevResult"]["by"], "bandwidth");
    // The netns is no namespace (here: no file at all): DEL gets none.
    assert_eq!(rec.calls.lock().unwrap()[0].env("CNI_NETNS"), Some(""));
    assert!(cni.cached_result("sb1").is_none());
    assert!(!env.cache_dir().join("sb1.json").exists());
    // A second teardown is fine (DEL with the current config, no cache).
    cni.teardown(&pod()).await.unwrap();
}

#[tokio::test]
async fn failed_add_deletes_the_whole_list_and_leaves_no_cache() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder {
        // The failed plugin's own DEL failing does not keep the cache.
        fail: vec![(Command::Add, "portmap"), (Command::Del, "portmap")],
        ..Default::default()
    });
    let e = env.cni(&rec).setup(&pod()).await.unwrap_err();
    assert!(e.to_string().contains("plugin portmap failed"), "{e}");
    assert!(e.to_string().contains("network testnet"), "{e}");
    assert_eq!(
        rec.calls(),
        vec![
            (Add, "bridge".into()),
            (Add, "portmap".into()),
            (Del, "bandwidth".into()),
            (Del, "portmap".into()),
            (Del, "bridge".into()),
        ]
    );
    assert!(!env.cache_dir().join("sb1.json").exists());
}

#[tokio::test]
async fn a_failed_rollback_keeps_the_cache_for_a_later_teardown() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder {
        fail: vec![(Command::Add, "bandwidth"), (Command::Del, "portmap")],
        ..Default::default()
    });
    let cni = env.cni(&rec);
    cni.setup(&pod()).await.unwrap_err();
    // Every DEL ran although one failed.
    assert_eq!(rec.calls().len(), 6);
    assert!(env.cache_dir().join("sb1.json").exists());
    assert!(cni.cached_result("sb1").is_none());
    assert!(cni.teardown(&pod()).await.is_err());
    assert!(env.cache_dir().join("sb1.json").exists());
}

#[tokio::test]
async fn teardown_uses_the_cached_config_after_the_conf_dir_changed() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    env.cni(&rec).setup(&pod()).await.unwrap();
    std::fs::write(
        env.cfg.conf_dir.join("10-test.conflist"),
        r#"{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"macvlan"}]}"#,
    )
    .unwrap();
    rec.calls.lock().unwrap().clear();
    // A new Cni, as after a restart.
    env.cni(&rec).teardown(&pod()).await.unwrap();
    assert_eq!(rec.calls()[2], (Del, "bridge".into()));
    assert_eq!(rec.stdin(0)["name"], "testnet");
}

#[tokio::test]
async fn check_uses_the_cached_result() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    let cni = env.cni(&rec);
    assert!(cni.check(&pod()).await.unwrap_err().is_not_found());
    cni.setup(&pod()).await.unwrap();
    rec.calls.lock().unwrap().clear();
    cni.check(&pod()).await.unwrap();
    assert_eq!(rec.calls()[0], (Check, "bridge".into()));
    assert_eq!(rec.stdin(0)["prevResult"]["by"], "bandwidth");
}

#[tokio::test]
async fn check_is_skipped_before_040() {
    let env = Env::new(&LIST.replace("1.0.0", "0.3.1"));
    let rec = Arc::new(Recorder::default());
    let cni = env.cni(&rec);
    cni.setup(&pod()).await.unwrap();
    rec.calls.lock().unwrap().clear();
    cni.check(&pod()).await.unwrap();
    assert!(rec.calls().is_empty());
}

#[tokio::test]
async fn status_reports_missing_config_and_missing_binaries() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    let cni = env.cni(&rec);
    let e = cni.status().unwrap_err();
    assert!(e.contains("bridge"), "{e}");
    for p in ["bridge", "host-local", "portmap"] {
        env.plugin(p, "exit 0");
    }
    assert!(cni.status().unwrap_err().contains("bandwidth"));
    env.plugin("bandwidth", "exit 0");
    cni.status().unwrap();
    std::fs::remove_file(env.cfg.conf_dir.join("10-test.conflist")).unwrap();
    assert!(cni.status().unwrap_err().contains("no network config"));
    std::fs::write(env.cfg.conf_dir.join("1.conflist"), "{").unwrap();
    assert!(cni.status().unwrap_err().contains("1.conflist"));
}

#[tokio::test]
async fn pod_cidr_is_substituted_into_host_local() {
    let env = Env::new(
        r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge",
        "ipam":{"type":"host-local","ranges":[[{"subnet":"usePodCidr"}]]}}]}"#,
    );
    let rec = Arc::new(Recorder::default());
    let cni = env.cni(&rec);
    cni.set_pod_cidr("10.244.1.0/24");
    cni.setup(&pod()).await.unwrap();
    assert_eq!(
        rec.stdin(0)["ipam"]["ranges"][0][0]["subnet"],
        "10.244.1.0/24"
    );
}

#[tokio::test]
async fn shell_plugins_see_env_and_stdin() {
    let env = Env::new(r#"{"cniVersion":"0.4.0","name":"sh","plugins":[{"type":"recorder"}]}"#);
    let log = env.dir.path().join("log");
    env.plugin(
        "recorder",
        &format!(
            "echo \"$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME\" >> {l}; cat >> {l}; echo >> {l}\n\
             echo '{{\"cniVersion\":\"0.4.0\",\"ips\":[{{\"version\":\"4\",\"address\":\"10.9.9.9/24\"}}]}}'",
            l = log.display()
        ),
    );
    let cni = Cni::new(&env.cfg, env.cache_dir());
    assert_eq!(cni.setup(&pod()).await.unwrap().ip, "10.9.9.9");
    cni.teardown(&pod()).await.unwrap();
    let log = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "ADD sb1 eth0");
    let add: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(add["name"], "sh");
    assert_eq!(lines[2], "DEL sb1 eth0");
    let del: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(del["prevResult"]["ips"][0]["address"], "10.9.9.9/24");
}

#[tokio::test]
async fn invalid_bandwidth_annotation_is_an_invalid_argument() {
    let env = Env::new(LIST);
    let rec = Arc::new(Recorder::default());
    let mut p = pod();
    p.annotations
        .insert("kubernetes.io/egress-bandwidth".into(), "lots".into());
    let e = env.cni(&rec).setup(&p).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(rec.calls().is_empty());
}

#[test]
fn cni_futures_are_send_for_grpc_handlers() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Cni>();
    let env = Env::new(LIST);
    let cni = Cni::new(&env.cfg, env.cache_dir());
    let p = pod();
    assert_send(&cni.setup(&p));
    assert_send(&cni.teardown(&p));
    assert_send(&cni.check(&p));
}
