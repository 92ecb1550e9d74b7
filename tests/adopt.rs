//! `crid adopt`: pods that containerd's own CRI plugin runs are taken over
//! by crid without a restart. A containerd of the test's own runs them with
//! its CRI plugin on (driven over CRI on containerd's socket, as kubelet
//! would), is restarted with the plugin off, and crid adopts them: the same
//! ids in the same states, exec, stats, resources, logs that keep arriving
//! in the same file, a crid restart, and stop/remove with nothing left.

mod support;

use crid::cri::image_service_client::ImageServiceClient;
use crid::cri::runtime_service_client::RuntimeServiceClient;
use crid::cri::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use support::image::{busybox_image, ImageConfig, TestRegistry};
use support::pod::{attach_url, bridge_conflist, unique_network};
use support::*;

/// What the CRI plugin writes outside the test's directories — netns pins
/// in /var/run/netns and libcni's cache in /var/lib/cni/results — by the
/// names this test's pods got, removed even when the test fails.
#[derive(Default)]
struct GlobalLeftovers {
    netns: Vec<PathBuf>,
    sandbox_ids: Vec<String>,
    bridge: String,
}

impl GlobalLeftovers {
    fn libcni_files(&self) -> Vec<PathBuf> {
        self.sandbox_ids
            .iter()
            .flat_map(|id| {
                crid::adopt::cri_plugin::libcni_cache_files(Path::new("/var/lib/cni"), id)
            })
            .collect()
    }
}

impl Drop for GlobalLeftovers {
    fn drop(&mut self) {
        for ns in &self.netns {
            let _ = nix::mount::umount2(ns, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(ns);
        }
        for f in self.libcni_files() {
            let _ = std::fs::remove_file(f);
        }
        if !self.bridge.is_empty() {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.bridge])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A bounded wait for `cond`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn adopt(crid: &TestCrid, args: &[&str]) -> Output {
    let out = crid
        .command()
        .arg("adopt")
        .args(args)
        .output()
        .expect("run crid adopt");
    eprintln!(
        "---- crid adopt {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn pod_config(name: &str, log_dir: &Path) -> PodSandboxConfig {
    let uid = format!("uid-{name}");
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            namespace: "default".into(),
            uid: uid.clone(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir
            .join(format!("default_{name}_{uid}"))
            .display()
            .to_string(),
        labels: [("app".to_string(), name.to_string())].into(),
        annotations: [("note".to_string(), "adopted".to_string())].into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption::default()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption::default()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Run a pod and its containers through containerd's CRI plugin; what the
/// plugin made outside the test's directories goes in `global` at once.
async fn run_pod(
    cri: &mut RuntimeClient,
    global: &mut GlobalLeftovers,
    ctrd: &crid::containerd::Containerd,
    config: &PodSandboxConfig,
    containers: &[ContainerConfig],
) -> (String, Vec<String>) {
    let pod = cri
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox on containerd's CRI")
        .into_inner()
        .pod_sandbox_id;
    global.sandbox_ids.push(pod.clone());
    let record = ctrd.get_container(&pod).await.unwrap();
    let meta = crid::adopt::cri_plugin::SandboxMetadata::decode(
        &record.extensions[crid::adopt::cri_plugin::SANDBOX_METADATA].value,
    )
    .expect("the plugin's sandbox metadata decodes");
    if !meta.netns_path.is_empty() {
        assert!(
            meta.netns_path.starts_with("/var/run/netns/cni-"),
            "{}",
            meta.netns_path
        );
        global.netns.push(meta.netns_path.into());
    }
    let mut ids = vec![];
    for c in containers {
        let id = cri
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(c.clone()),
                sandbox_config: Some(config.clone()),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        cri.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("StartContainer");
        ids.push(id);
    }
    (pod, ids)
}

/// The numbers of `line <n> …` entries in a CRI log file, in file order.
fn logged_numbers(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let content = l.splitn(4, ' ').nth(3)?;
            content
                .strip_prefix("line ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// For the record (no assertion: it depends on timing): the longest pause
/// between two log entries (containerd stopped: nobody read), and how much
/// content was logged within 50 ms after it (what the pipes held, read at
/// once).
fn backlog_at_switch_over(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let entries: Vec<(chrono::DateTime<chrono::FixedOffset>, usize)> = text
        .lines()
        .filter_map(|l| {
            Some((
                chrono::DateTime::parse_from_rfc3339(l.split(' ').next()?).ok()?,
                l.len(),
            ))
        })
        .collect();
    let Some(i) = (1..entries.len()).max_by_key(|&i| entries[i].0 - entries[i - 1].0) else {
        return "no log entries".into();
    };
    let pause = entries[i].0 - entries[i - 1].0;
    let burst: usize = entries[i..]
        .iter()
        .take_while(|(t, _)| *t - entries[i].0 < chrono::Duration::milliseconds(50))
        .map(|(_, n)| n)
        .sum();
    format!(
        "longest pause in the log: {} ms; content logged within 50 ms after it: {burst} bytes",
        pause.num_milliseconds()
    )
}

/// The chatty container's line `n` (newline included).
fn line_len(n: u64) -> u64 {
    format!("line {n} {PADDING}\n").len() as u64
}

/// The sidecar serves this pod's name on 127.0.0.1:8080 inside the pod.
const SERVE: &str = "mkdir -p /tmp/w && echo pod two > /tmp/w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/w";

const PADDING: &str =
    "ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo";

async fn states(rt: &mut RuntimeClient) -> (BTreeMap<String, i32>, BTreeMap<String, i32>) {
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|p| (p.id, p.state))
        .collect();
    let containers = rt
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    (pods, containers)
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn container_status(rt: &mut RuntimeClient, id: &str) -> ContainerStatus {
    rt.container_status(ContainerStatusRequest {
        container_id: id.to_string(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crid_adopts_pods_of_containerds_cri_plugin_without_restarting_them() {
    if missing_tools() {
        return;
    }
    let mut global = GlobalLeftovers::default();
    let work = short_tempdir("adopt");
    let registry = TestRegistry::start();
    let image = registry.push(
        &busybox_image(
            &work.path().join("busybox"),
            "latest",
            &ImageConfig::default(),
        ),
        "busybox",
        "latest",
        None,
    );
    let pause_cfg = ImageConfig {
        entrypoint: vec!["/bin/sleep".into()],
        cmd: vec!["100000000".into()],
        ..ImageConfig::default()
    };
    let pause = registry.push(
        &busybox_image(&work.path().join("pause"), "v1", &pause_cfg),
        "pause",
        "v1",
        None,
    );
    let certs = work.path().join("certs.d");
    std::fs::create_dir_all(certs.join(&registry.addr)).unwrap();
    std::fs::write(
        certs.join(&registry.addr).join("hosts.toml"),
        format!(
            "server = \"http://{a}\"\n[host.\"http://{a}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            a = registry.addr
        ),
    )
    .unwrap();
    let (bridge, subnet) = unique_network();
    global.bridge = bridge.clone();
    let ipam = work.path().join("ipam");
    let net_d = work.path().join("net.d");
    std::fs::create_dir_all(&net_d).unwrap();
    std::fs::write(
        net_d.join("10-test.conflist"),
        bridge_conflist(&bridge, &subnet, &ipam),
    )
    .unwrap();
    let logs = work.path().join("logs");

    let cri_toml = format!(
        r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{net_d}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"#,
        net_d = net_d.display(),
        certs = certs.display(),
    );
    let mut containerd = TestContainerd::start_with_cri_plugin(&cri_toml);
    let ctrd_client =
        crid::containerd::Containerd::new(&containerd.address, "k8s.io", "overlayfs").unwrap();

    // ---- Pods run by containerd's CRI plugin.
    let channel = crid::util::unix_grpc::connect(&containerd.address)
        .await
        .unwrap();
    let mut cri = RuntimeServiceClient::new(channel.clone());
    ImageServiceClient::new(channel)
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage on containerd's CRI");
    let sleep = ["/bin/sleep", "100000"];
    let chatty_script = format!(
        "i=0; while :; do j=0; while [ $j -lt 100 ]; do i=$((i+1)); j=$((j+1)); echo \"line $i {PADDING}\"; done; sleep 0.05; done"
    );
    let pod1_cfg = pod_config("one", &logs);
    let (pod1, c1) = run_pod(
        &mut cri,
        &mut global,
        &ctrd_client,
        &pod1_cfg,
        &[
            container_config("sleeper", &image, &sleep),
            container_config("victim", &image, &sleep),
            container_config("done", &image, &["/bin/sh", "-c", "exit 3"]),
        ],
    )
    .await;
    // Created, never started: crid starts it once it has adopted the pod.
    let created = cri
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod1.clone(),
            config: Some(container_config(
                "late",
                &image,
                &[
                    "/bin/sh",
                    "-c",
                    "echo late $(cat /etc/hostname); sleep 100000",
                ],
            )),
            sandbox_config: Some(pod1_cfg.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    let pod2_cfg = pod_config("two", &logs);
    let (pod2, c2) = run_pod(
        &mut cri,
        &mut global,
        &ctrd_client,
        &pod2_cfg,
        &[
            container_config("chatty", &image, &["/bin/sh", "-c", &chatty_script]),
            container_config("sidecar", &image, &["/bin/sh", "-c", SERVE]),
        ],
    )
    .await;
    let (pod3, _) = run_pod(
        &mut cri,
        &mut global,
        &ctrd_client,
        &pod_config("three", &logs),
        &[],
    )
    .await;
    // On the node's network and IPC: no netns, no CNI, no /dev/shm of its own.
    let mut host_cfg = pod_config("host", &logs);
    host_cfg.hostname.clear();
    let ns = host_cfg
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    ns.namespace_options = Some(NamespaceOption {
        network: NamespaceMode::Node as i32,
        ipc: NamespaceMode::Node as i32,
        ..Default::default()
    });
    let (pod4, c4) = run_pod(
        &mut cri,
        &mut global,
        &ctrd_client,
        &host_cfg,
        &[container_config("hostnet", &image, &sleep)],
    )
    .await;
    let (sleeper, victim, done, chatty, sidecar) = (&c1[0], &c1[1], &c1[2], &c2[0], &c2[1]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = container_status(&mut cri, done).await;
        if s.state == ContainerState::ContainerExited as i32 {
            assert_eq!(s.exit_code, 3);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the `done` container did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log_of = |cfg: &PodSandboxConfig, name: &str| {
        PathBuf::from(&cfg.log_directory).join(name).join("0.log")
    };
    let chatty_log = log_of(&pod2_cfg, "chatty");
    let mut before = Vec::new();
    wait_for(
        "the chatty container's lines",
        Duration::from_secs(30),
        || {
            before = logged_numbers(&chatty_log);
            before.len() > 1000
        },
    )
    .await;
    let status_before = container_status(&mut cri, chatty).await;

    // ---- crid refuses while it serves, and while the plugin is loaded.
    let mut crid = TestCrid::start_with(
        &containerd,
        CridOptions {
            cni_conf_dir: Some(net_d.clone()),
            ..Default::default()
        },
    );
    let out = adopt(&crid, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("crid is serving"));
    crid.stop();
    let out = adopt(&crid, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("disabled_plugins"));

    // ---- containerd restarted with the plugin off: the pods keep running,
    // and nobody reads their output. Behind everyone's back, one container's
    // task and one pod's pause task go.
    containerd.cri_plugin = false;
    containerd.start_again();
    for id in [victim, &pod3] {
        containerd.ctr(&["tasks", "kill", "--signal", "SIGKILL", id]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while containerd.try_ctr(&["tasks", "rm", id]).is_err() {
            assert!(Instant::now() < deadline, "ctr tasks rm {id}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Nobody reads the chatty container's output now: it fills the FIFO and
    // its own pipe to the shim, and blocks writing.
    let chatty_pid: u32 = containerd
        .ctr(&["tasks", "ls"])
        .lines()
        .find(|l| l.starts_with(chatty.as_str()))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("the chatty task's pid");
    let wchan = format!("/proc/{chatty_pid}/wchan");
    wait_for(
        "the chatty container to block on its full pipe",
        Duration::from_secs(30),
        || std::fs::read_to_string(&wchan).is_ok_and(|w| w.contains("pipe_write")),
    )
    .await;

    // ---- Refused when crid's namespace is not the objects'.
    let out = crid
        .command()
        .args(["--containerd-namespace", "elsewhere", "adopt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set `[containerd] namespace = \"k8s.io\"`")
    );

    // ---- Dry run: the table, and nothing changed.
    let out = adopt(&crid, &[]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&id[..13]))
            .unwrap_or_else(|| panic!("no row for {id} in\n{table}"))
            .to_string()
    };
    for id in [
        &pod1, &pod2, sleeper, chatty, sidecar, done, &created, &pod4, &c4[0],
    ] {
        assert!(row(id).trim_end().ends_with("adopt"), "{}", row(id));
    }
    assert!(
        row(victim).contains("clean up: it was running and its task is gone"),
        "{}",
        row(victim)
    );
    assert!(
        row(&pod3).contains("clean up: its pause task is gone"),
        "{}",
        row(&pod3)
    );
    assert!(row(chatty).contains("default/two") && row(chatty).contains("chatty (attempt 0)"));
    assert!(
        row(done).contains("exited (3)") && row(&created).contains("created"),
        "{table}"
    );
    let record = ctrd_client.get_container(&pod1).await.unwrap();
    assert!(
        record
            .labels
            .contains_key(crid::adopt::cri_plugin::KIND_LABEL),
        "dry run changed a record"
    );
    assert_eq!(
        files_in(&crid.root.join("containers")),
        Vec::<String>::new(),
        "dry run wrote crid records"
    );
    assert!(containerd
        .dir
        .path()
        .join("root/io.containerd.grpc.v1.cri/containers")
        .join(sleeper)
        .join("status")
        .exists());

    // ---- Apply, then crid serves them.
    let out = adopt(&crid, &["--apply"]);
    assert!(out.status.success(), "crid adopt --apply failed");
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("adopted 9, cleaned up 2, left alone 0, failed 0"));
    // Once done, there is nothing left to adopt.
    let out = adopt(&crid, &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "a header and the dry-run line"
    );
    crid.restart();
    let mut rt = crid.runtime().await;
    let ready = PodSandboxState::SandboxReady as i32;
    let running = ContainerState::ContainerRunning as i32;
    let exited = ContainerState::ContainerExited as i32;
    let mut expect_states = (
        BTreeMap::from([
            (pod1.clone(), ready),
            (pod2.clone(), ready),
            (pod4.clone(), ready),
        ]),
        BTreeMap::from([
            (sleeper.clone(), running),
            (chatty.clone(), running),
            (sidecar.clone(), running),
            (done.clone(), exited),
            (created.clone(), ContainerState::ContainerCreated as i32),
            (c4[0].clone(), running),
        ]),
    );
    assert_eq!(states(&mut rt).await, expect_states);
    let done_status = container_status(&mut rt, done).await;
    assert_eq!(
        (done_status.exit_code, done_status.reason.as_str()),
        (3, "Error")
    );
    // The adopted pod's files and /dev/shm serve a container crid starts.
    rt.start_container(StartContainerRequest {
        container_id: created.clone(),
    })
    .await
    .expect("StartContainer of a container the plugin created");
    expect_states.1.insert(created.clone(), running);
    let late_log = log_of(&pod1_cfg, "late");
    wait_for("the late container's log", Duration::from_secs(20), || {
        std::fs::read_to_string(&late_log)
            .unwrap_or_default()
            .contains("late one")
    })
    .await;
    let shm = rt
        .exec_sync(ExecSyncRequest {
            container_id: created.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo x > /dev/shm/mark && ls /dev/shm".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(String::from_utf8_lossy(&shm.stdout).trim(), "mark");
    let seen = rt
        .exec_sync(ExecSyncRequest {
            container_id: sleeper.clone(),
            cmd: vec!["/bin/cat".into(), "/dev/shm/mark".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&seen.stdout).trim(),
        "x",
        "/dev/shm not shared with the plugin's containers"
    );
    let status = container_status(&mut rt, chatty).await;
    assert_eq!(status.log_path, status_before.log_path);
    assert_eq!(status.started_at, status_before.started_at);
    assert_eq!(status.created_at, status_before.created_at);
    assert_eq!(status.labels, status_before.labels);
    let pod_status = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod2.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(pod_status.annotations["note"], "adopted");
    assert!(!pod_status.network.unwrap().ip.is_empty());

    // Exec, stats and resources.
    let exec = rt
        .exec_sync(ExecSyncRequest {
            container_id: sleeper.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo hi from $(hostname)".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (exec.exit_code, String::from_utf8_lossy(&exec.stdout).trim()),
        (0, "hi from one")
    );
    let stats = rt
        .container_stats(ContainerStatsRequest {
            container_id: sidecar.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert!(stats.memory.is_some_and(|m| m.working_set_bytes.is_some()));
    rt.update_container_resources(UpdateContainerResourcesRequest {
        container_id: sleeper.clone(),
        linux: Some(LinuxContainerResources {
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("UpdateContainerResources of an adopted container");
    let limit = rt
        .exec_sync(ExecSyncRequest {
            container_id: sleeper.clone(),
            // cgroup v1, else v2.
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&limit.stdout).trim(),
        (64u64 << 20).to_string(),
        "{limit:?}"
    );

    // Port-forward enters the netns the plugin pinned.
    let url = rt
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod2.clone(),
            port: vec![8080],
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let (code, head, session) = support::spdy::spdy(&url, &["portforward.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    let answer = support::spdy::forwarded_http_get(&session.unwrap(), 8080, "pod two").await;
    assert!(answer.contains("pod two"), "{answer}");

    // Logs keep arriving in the same file, numbered on from where they were.
    let last_before = *before.last().unwrap();
    let mut after = Vec::new();
    wait_for(
        "log lines written through crid-logger",
        Duration::from_secs(30),
        || {
            after = logged_numbers(&chatty_log);
            after.last().is_some_and(|n| *n > last_before + 5000)
        },
    )
    .await;
    let mut gaps = vec![];
    for w in after.windows(2) {
        assert!(
            w[1] > w[0],
            "log lines out of order or repeated: {} then {}",
            w[0],
            w[1]
        );
        if w[1] != w[0] + 1 {
            gaps.push((w[0], w[1]));
        }
    }
    assert_eq!(after[0], 1, "the log lost its start");
    // What containerd had read from the FIFO but not written when it
    // stopped is lost: at most one 32 KiB read plus a 16 KiB line per stream.
    assert!(gaps.len() <= 1, "more than one gap: {gaps:?}");
    let lost: u64 = gaps.iter().flat_map(|(a, b)| a + 1..*b).map(line_len).sum();
    eprintln!("lines lost at the switch-over: {gaps:?} = {lost} bytes");
    assert!(lost <= 48 * 1024, "{lost} bytes lost");
    eprintln!("{}", backlog_at_switch_over(&chatty_log));

    // ReopenContainerLog goes through the adopted container's logger.
    let rotated = chatty_log.with_extension("log.1");
    std::fs::rename(&chatty_log, &rotated).unwrap();
    rt.reopen_container_log(ReopenContainerLogRequest {
        container_id: chatty.clone(),
    })
    .await
    .expect("ReopenContainerLog");
    wait_for("lines in the reopened log", Duration::from_secs(20), || {
        logged_numbers(&chatty_log).len() > 100
    })
    .await;
    let (old, new) = (logged_numbers(&rotated), logged_numbers(&chatty_log));
    assert_eq!(
        new[0],
        old.last().unwrap() + 1,
        "a line lost or repeated at the reopen"
    );

    // Attach streams the adopted container's output (through its logger).
    let url = attach_url(&mut rt, &chatty, false).await;
    let (code, head, session) = support::spdy::spdy(&url, &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 101, "{head}");
    let session = session.unwrap();
    let error = session
        .open(support::spdy::h("error"), false)
        .await
        .unwrap();
    error.writer.close().await.unwrap();
    let mut out = session
        .open(support::spdy::h("stdout"), true)
        .await
        .unwrap();
    let _err = session
        .open(support::spdy::h("stderr"), true)
        .await
        .unwrap();
    let mut attached = Vec::new();
    for _ in 0..1000 {
        if String::from_utf8_lossy(&attached).contains("\nline ") {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(10), out.reader.read()).await {
            Ok(Some(chunk)) => attached.extend_from_slice(&chunk),
            other => panic!("attach output ended: {other:?}"),
        }
    }
    assert!(String::from_utf8_lossy(&attached).contains("\nline "));
    drop((out, session));

    // ---- A crid restart keeps them.
    crid.restart();
    let mut rt = crid.runtime().await;
    assert_eq!(states(&mut rt).await, expect_states);

    // ---- Stop and remove through crid: nothing left.
    for pod in [&pod1, &pod2, &pod4] {
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("StopPodSandbox");
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("RemovePodSandbox");
    }
    assert_eq!(states(&mut rt).await, Default::default());
    for ns in &global.netns {
        assert!(!ns.exists(), "netns pin {} left", ns.display());
    }
    assert_eq!(
        global.libcni_files(),
        Vec::<PathBuf>::new(),
        "libcni cache left"
    );
    assert_eq!(
        files_in(&ipam.join(&bridge))
            .into_iter()
            .filter(|f| f.starts_with("10."))
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "pod IPs left"
    );
    let count = |out: String| out.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
    assert_eq!(
        count(containerd.ctr(&["containers", "ls"])),
        0,
        "containerd containers left"
    );
    assert_eq!(
        count(containerd.ctr(&["tasks", "ls"])),
        0,
        "containerd tasks left"
    );
    let snaps = containerd.ctr(&["snapshots", "ls"]);
    assert_eq!(
        snaps.lines().filter(|l| l.contains("Active")).count(),
        0,
        "active snapshots left:\n{snaps}"
    );
    for dir in [containerd.dir.path(), crid.dir.path()] {
        assert_eq!(mounts_under(dir), Vec::<String>::new(), "mounts left");
    }
    for kind in ["sandboxes", "containers"] {
        for base in ["root", "state"] {
            let d = containerd
                .dir
                .path()
                .join(base)
                .join("io.containerd.grpc.v1.cri")
                .join(kind);
            assert_eq!(files_in(&d), Vec::<String>::new(), "{} left", d.display());
        }
    }
    wait_for("shims to exit", Duration::from_secs(20), || {
        containerd.shim_pids().is_empty()
    })
    .await;
    let state = crid.state.display().to_string();
    wait_for("crid-loggers to exit", Duration::from_secs(20), || {
        pids_whose_cmdline(|args| args.iter().any(|a| a.starts_with(state.as_bytes())))
            .iter()
            .all(|p| Some(*p) == crid.pid())
    })
    .await;
    if std::env::var_os("ADOPT_SHOW_CRID_LOG").is_some() {
        eprintln!("{}", crid.log());
    }
    drop(global);
}
