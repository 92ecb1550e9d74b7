//! A whole node for tests: containerd, a registry with the busybox test
//! image, a CNI bridge network of the test's own and crid; helpers that
//! drive pods and containers the way kubelet does.

use super::image::{busybox_image, ImageConfig, TestRegistry};
use super::*;
use crid::cri::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};

static NET_SEQ: AtomicU32 = AtomicU32::new(0);

/// A bridge name and /24 subnet no other test of this run uses.
pub fn unique_network() -> (String, String) {
    let n = NET_SEQ.fetch_add(1, Ordering::SeqCst);
    let k = (std::process::id() * 7 + n) % 250;
    (
        format!("crt{}{}", std::process::id() % 10000, n),
        format!("10.201.{k}.0/24"),
    )
}

/// bridge + host-local (data dir inside the test dir) + portmap + loopback.
pub fn bridge_conflist(bridge: &str, subnet: &str, ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": bridge,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
             "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "dataDir": ipam_dir}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"}
        ]
    })
    .to_string()
}

/// Where a container's CRI log is: the pod's log directory + its log path.
pub fn log_path(pod: &PodSandboxConfig, c: &ContainerConfig) -> PathBuf {
    Path::new(&pod.log_directory).join(&c.log_path)
}

/// (stream, tag, content) of every CRI log line; checks the timestamp shape
/// (RFC 3339, UTC).
pub fn parse_log(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let ts = parts.next().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
                "bad timestamp in {l:?}"
            );
            let stream = parts.next().unwrap().to_string();
            let tag = parts.next().unwrap().to_string();
            let content = parts.next().unwrap_or("").to_string();
            (stream, tag, content)
        })
        .collect()
}

/// The contents of the lines of the CRI log files `paths`, in order.
pub fn log_contents(paths: &[&Path]) -> Vec<String> {
    paths
        .iter()
        .flat_map(|p| parse_log(&std::fs::read_to_string(p).unwrap()))
        .map(|l| l.2)
        .collect()
}

pub struct PodEnv {
    pub crid: TestCrid,
    pub registry: TestRegistry,
    pub containerd: TestContainerd,
    pub image: String,
    pub bridge: String,
    pub subnet: String,
    pub ipam_dir: PathBuf,
    pub log_dir: tempfile::TempDir,
    _image_dir: tempfile::TempDir,
}

/// The streaming URL of an attach to a container's stdout and stderr (and
/// stdin when `stdin`).
pub async fn attach_url(rt: &mut RuntimeClient, cid: &str, stdin: bool) -> String {
    rt.attach(AttachRequest {
        container_id: cid.to_string(),
        stdin,
        stdout: true,
        stderr: true,
        ..Default::default()
    })
    .await
    .expect("Attach")
    .into_inner()
    .url
}

impl PodEnv {
    pub async fn new() -> PodEnv {
        Self::with_options(CridOptions::default()).await
    }

    pub async fn with_options(opts: CridOptions) -> PodEnv {
        Self::on_containerd(TestContainerd::start(), opts).await
    }

    /// A node on a containerd the test started itself.
    pub async fn on_containerd(containerd: TestContainerd, opts: CridOptions) -> PodEnv {
        let registry = TestRegistry::start();
        let image_dir = short_tempdir("img");
        let built = busybox_image(
            &image_dir.path().join("busybox"),
            "latest",
            &ImageConfig::default(),
        );
        let image = registry.push(&built, "busybox", "latest", None);
        let (bridge, subnet) = unique_network();
        let crid = TestCrid::start_with(&containerd, opts);
        let ipam_dir = crid.dir.path().join("ipam");
        std::fs::write(
            crid.cni_conf_dir.join("10-test.conflist"),
            bridge_conflist(&bridge, &subnet, &ipam_dir),
        )
        .unwrap();
        let env = PodEnv {
            crid,
            registry,
            containerd,
            image,
            bridge,
            subnet,
            ipam_dir,
            log_dir: short_tempdir("logs"),
            _image_dir: image_dir,
        };
        env.pull(&env.image.clone()).await;
        env
    }

    pub async fn rt(&self) -> RuntimeClient {
        self.crid.runtime().await
    }

    pub async fn pull(&self, image: &str) -> String {
        self.crid
            .images()
            .await
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("pull")
            .into_inner()
            .image_ref
    }

    /// ListImages, unfiltered.
    pub async fn list_images(&self) -> Vec<Image> {
        self.crid
            .images()
            .await
            .list_images(ListImagesRequest::default())
            .await
            .expect("ListImages")
            .into_inner()
            .images
    }

    /// The id of the image `name` names, from ImageStatus; panics when absent.
    pub async fn image_id(&self, name: &str) -> String {
        self.crid
            .images()
            .await
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: name.into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
            .image
            .unwrap_or_else(|| panic!("crid has no image {name}"))
            .id
    }

    /// RemoveImage of `name`.
    pub async fn remove_image(&self, name: &str) {
        self.crid
            .images()
            .await
            .remove_image(RemoveImageRequest {
                image: Some(ImageSpec {
                    image: name.into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("RemoveImage");
    }

    pub fn pod_config(&self, name: &str) -> PodSandboxConfig {
        let uid = format!("{name}-uid");
        let log_directory = self.log_dir.path().join(format!("default_{name}_{uid}"));
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid,
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.to_string(),
            log_directory: log_directory.to_string_lossy().into_owned(),
            labels: HashMap::from([("app".to_string(), name.to_string())]),
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

    /// `pod_config` on the node's network (no netns, no CNI).
    pub fn host_network_pod_config(&self, name: &str) -> PodSandboxConfig {
        let mut pod = self.pod_config(name);
        let sc = pod.linux.as_mut().unwrap().security_context.as_mut();
        sc.unwrap().namespace_options = Some(NamespaceOption {
            network: NamespaceMode::Node as i32,
            ..Default::default()
        });
        pod
    }

    /// `pod_config` as kubelet sends a pod without `shareProcessNamespace`:
    /// a PID namespace per container, so crid runs it without a pause
    /// container (`drop_pause_container`, on by default).
    pub fn pod_config_without_shared_pid(&self, name: &str) -> PodSandboxConfig {
        let mut pod = self.pod_config(name);
        let sc = pod.linux.as_mut().unwrap().security_context.as_mut();
        sc.unwrap().namespace_options = own_pid_namespace();
        pod
    }

    pub async fn run_pod(&self, config: &PodSandboxConfig) -> String {
        self.run_pod_on(config, "").await
    }

    /// RunPodSandbox with a runtime handler (RuntimeClass).
    pub async fn run_pod_on(&self, config: &PodSandboxConfig, handler: &str) -> String {
        self.rt()
            .await
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.to_string(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id
    }

    pub fn container_config(&self, name: &str, command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: self.image.clone(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}/0.log"),
            linux: Some(LinuxContainerConfig {
                // As kubelet sends every container, whether the node's
                // cgroups have the hugetlb controller or not.
                resources: Some(LinuxContainerResources {
                    hugepage_limits: kubelet_hugepage_limits(),
                    ..Default::default()
                }),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption::default()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    pub async fn create(
        &self,
        sandbox_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        self.try_create(sandbox_id, pod, config)
            .await
            .expect("CreateContainer")
    }

    /// CreateContainer that must fail: its status.
    pub async fn create_err(
        &self,
        sandbox_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> tonic::Status {
        self.try_create(sandbox_id, pod, config)
            .await
            .expect_err("CreateContainer should fail")
    }

    async fn try_create(
        &self,
        sandbox_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        let created = self
            .rt()
            .await
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            })
            .await?;
        Ok(created.into_inner().container_id)
    }

    /// ListPodSandbox, unfiltered.
    pub async fn sandboxes(&self) -> Vec<PodSandbox> {
        self.rt()
            .await
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .expect("ListPodSandbox")
            .into_inner()
            .items
    }

    /// ListContainers, unfiltered.
    pub async fn containers(&self) -> Vec<Container> {
        self.rt()
            .await
            .list_containers(ListContainersRequest::default())
            .await
            .expect("ListContainers")
            .into_inner()
            .containers
    }

    pub async fn start(&self, id: &str) {
        self.rt()
            .await
            .start_container(StartContainerRequest {
                container_id: id.to_string(),
            })
            .await
            .expect("StartContainer");
    }

    /// Create + start; returns the container id.
    pub async fn run(
        &self,
        sandbox_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        let id = self.create(sandbox_id, pod, config).await;
        self.start(&id).await;
        id
    }

    pub async fn status(&self, id: &str) -> ContainerStatus {
        self.rt()
            .await
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .unwrap()
    }

    pub async fn pod_status(&self, id: &str) -> PodSandboxStatusResponse {
        self.rt()
            .await
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: true,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
    }

    /// The pod's IP, as PodSandboxStatus reports it.
    pub async fn pod_ip(&self, id: &str) -> String {
        let status = self.pod_status(id).await.status.expect("status");
        status.network.expect("network status").ip
    }

    pub async fn pod_stats(&self, id: &str) -> LinuxPodSandboxStats {
        self.rt()
            .await
            .pod_sandbox_stats(PodSandboxStatsRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .expect("PodSandboxStats")
            .into_inner()
            .stats
            .unwrap()
            .linux
            .unwrap()
    }

    /// Poll ContainerStatus until EXITED (bounded: 60 s).
    pub async fn wait_exited(&self, id: &str) -> ContainerStatus {
        for _ in 0..600 {
            let s = self.status(id).await;
            if s.state == ContainerState::ContainerExited as i32 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("container {id} did not exit:\n{}", self.crid.log());
    }

    /// Poll until `path` contains `needle` (bounded: 30 s).
    /// Rotate a container's log as kubelet does: rename it to `.log.1`, call
    /// ReopenContainerLog, expect a fresh file at the path. Returns the
    /// rotated file.
    pub async fn rotate_log(&self, path: &Path, cid: &str) -> PathBuf {
        let rotated = path.with_extension("log.1");
        std::fs::rename(path, &rotated).unwrap();
        self.rt()
            .await
            .reopen_container_log(ReopenContainerLogRequest {
                container_id: cid.to_string(),
            })
            .await
            .expect("ReopenContainerLog");
        assert!(
            path.exists(),
            "a fresh log file once ReopenContainerLog returns"
        );
        rotated
    }

    pub async fn wait_for_file(&self, path: &Path, needle: &str) -> String {
        for _ in 0..300 {
            if let Ok(s) = std::fs::read_to_string(path) {
                if s.contains(needle) {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} never contained {needle:?}: {:?}",
            path.display(),
            std::fs::read_to_string(path)
        );
    }

    pub async fn stop_pod(&self, id: &str) {
        self.rt()
            .await
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .expect("StopPodSandbox");
    }

    pub async fn stop_and_remove_pod(&self, id: &str) {
        self.stop_pod(id).await;
        let mut rt = self.rt().await;
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await
        .expect("RemovePodSandbox");
    }

    /// Remove every pod crid reports (test cleanup).
    pub async fn remove_all_pods(&self) {
        let mut rt = self.rt().await;
        let pods = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
        for p in pods {
            self.stop_and_remove_pod(&p.id).await;
        }
    }

    /// Host-local allocation files (one per allocated IP).
    pub fn allocated_ips(&self) -> Vec<String> {
        let dir = self.ipam_dir.join(&self.bridge);
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn netns_files(&self) -> Vec<String> {
        self.pin_files("netns")
    }

    /// Files in one of crid's namespace pin dirs (`netns`, `ipcns`, `utsns`).
    pub fn pin_files(&self, dir: &str) -> Vec<String> {
        std::fs::read_dir(self.crid.state.join(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// containerd containers + tasks in k8s.io (lines of `ctr` output, minus headers).
    pub fn containerd_objects(&self) -> (usize, usize) {
        let count = |out: String| out.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        (
            count(self.containerd.ctr(&["containers", "ls"])),
            count(self.containerd.ctr(&["tasks", "ls"])),
        )
    }

    /// Every kind of leak this env can count, asserted zero.
    pub fn assert_no_leaks(&self) {
        assert_eq!(
            self.netns_files(),
            Vec::<String>::new(),
            "netns files leaked"
        );
        for dir in ["ipcns", "utsns", "userns", "idmap"] {
            assert_eq!(
                self.pin_files(dir),
                Vec::<String>::new(),
                "{dir} pins leaked"
            );
        }
        assert_eq!(self.allocated_ips(), Vec::<String>::new(), "pod IPs leaked");
        assert_eq!(
            self.containerd_objects(),
            (0, 0),
            "containerd containers/tasks leaked"
        );
        assert_eq!(
            mounts_under(self.crid.dir.path()),
            Vec::<String>::new(),
            "mounts leaked"
        );
        let snaps = self.containerd.ctr(&["snapshots", "ls"]);
        let active = snaps.lines().filter(|l| l.contains("Active")).count();
        assert_eq!(active, 0, "active snapshots leaked:\n{snaps}");
    }
}

impl Drop for PodEnv {
    fn drop(&mut self) {
        // Only the bridge this test created.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The hugepage limits kubelet puts on every container: each page size of
/// the node (`/sys/kernel/mm/hugepages/hugepages-2048kB` → `2MB`), limit 0
/// unless the pod asks for hugepages of that size.
pub fn kubelet_hugepage_limits() -> Vec<HugepageLimit> {
    let mut sizes: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let kb = name.strip_prefix("hugepages-")?.strip_suffix("kB")?;
                    kb.parse::<u64>().ok().map(|kb| kb * 1024)
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort_unstable();
    sizes
        .into_iter()
        .map(|bytes| HugepageLimit {
            page_size: hugepage_size_name(bytes),
            limit: 0,
        })
        .collect()
}

/// kubelet's name of a page size (`HugePageUnitSizeFromByteSize`): 2097152 → `2MB`.
pub fn hugepage_size_name(mut bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut i = 0;
    while bytes.is_multiple_of(1024) && i < units.len() - 1 {
        bytes /= 1024;
        i += 1;
    }
    format!("{bytes}{}", units[i])
}

fn own_pid_namespace() -> Option<NamespaceOption> {
    Some(NamespaceOption {
        pid: NamespaceMode::Container as i32,
        ..Default::default()
    })
}

/// A container in a PID namespace of its own, as kubelet sends one for a pod
/// without `shareProcessNamespace`.
pub fn in_own_pid_namespace(mut c: ContainerConfig) -> ContainerConfig {
    let sc = c.linux.get_or_insert_with(Default::default);
    sc.security_context
        .get_or_insert_with(Default::default)
        .namespace_options = own_pid_namespace();
    c
}

/// GET / from addr, bounded retries (the server needs a moment to bind).
pub fn http_get(addr: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if !out.is_empty() {
                    return out;
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no answer from {addr}: {last}");
}
