//! The systems under test: a CRI endpoint (crid, containerd's CRI plugin)
//! driven like kubelet, or dockerd driven like dockershim (pause container
//! with `NetworkMode=none`, CNI run by the client, app container joining the
//! pause container's network and IPC namespaces).

use anyhow::{anyhow, Context, Result};
use crid::cri::image_service_client::ImageServiceClient;
use crid::cri::runtime_service_client::RuntimeServiceClient;
use crid::cri::*;
use crid::migrate::docker::engine::Docker;
use crid::network::cni::{Cni, PodNetwork};
use hyper::Method;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tonic::transport::Channel;

/// (phase name, milliseconds), in order.
pub type Phases = Vec<(&'static str, f64)>;

/// One timed pull.
#[derive(Debug, Clone, Copy)]
pub struct Pulled {
    pub ms: f64,
    /// Layers the puller reported as already present (dockerd only).
    pub layers_present: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct PodRef {
    pub name: String,
    pub sandbox: String,
    pub container: String,
}

pub async fn cri_channel(endpoint: &str) -> Result<Channel> {
    crid::util::unix_grpc::connect(&crid::util::unix_grpc::socket_path(endpoint))
        .await
        .with_context(|| format!("connect {endpoint}"))
}

/// The pod's cgroup as kubelet's cgroupfs driver names it, under a parent
/// of the benchmark's own (`scripts/bench.sh` removes it at the end).
pub fn pod_cgroup(uid: &str) -> String {
    format!("/bench-kubepods/besteffort/pod{uid}")
}

/// What kubelet sends for a BestEffort pod without a securityContext: its
/// pod cgroup as parent, cpu shares 2 and oom_score_adj 1000; the
/// sandbox runs with the runtime's default seccomp profile (kubelet forces it
/// for the pause process), the container unconfined (kubelet's default
/// without `--seccomp-default`), each container in its own pid namespace,
/// with kubelet's default masked and read-only /proc paths.
fn kubelet_sandbox_linux(uid: &str) -> LinuxPodSandboxConfig {
    LinuxPodSandboxConfig {
        cgroup_parent: pod_cgroup(uid),
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Container as i32,
                ..Default::default()
            }),
            seccomp: Some(SecurityProfile {
                profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn kubelet_container_linux() -> LinuxContainerConfig {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            cpu_shares: 2,
            oom_score_adj: 1000,
            ..Default::default()
        }),
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Container as i32,
                ..Default::default()
            }),
            seccomp: Some(SecurityProfile {
                profile_type: security_profile::ProfileType::Unconfined as i32,
                ..Default::default()
            }),
            masked_paths: strings(&[
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
            ]),
            readonly_paths: strings(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
            ..Default::default()
        }),
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub struct CriBackend {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
    /// Image of the app container (present before the run).
    pub image: String,
    pub log_root: String,
}

pub struct DockerBackend {
    pub docker: Docker,
    pub pause_image: String,
    pub image: String,
    pub cni: Arc<Cni>,
}

pub enum Backend {
    Cri(Box<CriBackend>),
    Docker(DockerBackend),
}

const APP_CMD: [&str; 2] = ["sleep", "3600"];

impl Backend {
    pub async fn cri(endpoint: &str, image: &str, log_root: &str) -> Result<Backend> {
        let ch = cri_channel(endpoint).await?;
        Ok(Backend::Cri(Box::new(CriBackend {
            rt: RuntimeServiceClient::new(ch.clone()),
            img: ImageServiceClient::new(ch),
            image: image.into(),
            log_root: log_root.into(),
        })))
    }

    pub fn is_docker(&self) -> bool {
        matches!(self, Backend::Docker(_))
    }

    /// Start one pod with one `sleep 3600` container; per-step timings.
    pub async fn start_pod(&self, name: &str) -> Result<(PodRef, Phases)> {
        match self {
            Backend::Cri(b) => b.start_pod(name).await,
            Backend::Docker(b) => b.start_pod(name).await,
        }
    }

    /// Stop and remove a pod the way kubelet (dockershim) tears one down.
    pub async fn stop_pod(&self, pod: &PodRef) -> Result<Phases> {
        match self {
            Backend::Cri(b) => b.stop_pod(pod).await,
            Backend::Docker(b) => b.stop_pod(pod).await,
        }
    }

    /// kubelet's relist: list sandboxes, list containers, one container status.
    pub async fn relist(&self, container: &str) -> Result<Phases> {
        let mut out = Phases::new();
        match self {
            Backend::Cri(b) => {
                let mut rt = b.rt.clone();
                let t = Instant::now();
                rt.list_pod_sandbox(ListPodSandboxRequest::default())
                    .await?;
                out.push(("ListPodSandbox", ms(t)));
                let t = Instant::now();
                rt.list_containers(ListContainersRequest::default()).await?;
                out.push(("ListContainers", ms(t)));
                let t = Instant::now();
                rt.container_status(ContainerStatusRequest {
                    container_id: container.into(),
                    verbose: false,
                })
                .await?;
                out.push(("ContainerStatus", ms(t)));
            }
            Backend::Docker(b) => {
                let t = Instant::now();
                b.docker
                    .list("io.kubernetes.docker.type=podsandbox")
                    .await?;
                out.push(("ListPodSandbox", ms(t)));
                let t = Instant::now();
                b.docker.list("io.kubernetes.docker.type=container").await?;
                out.push(("ListContainers", ms(t)));
                let t = Instant::now();
                b.docker.inspect(container).await?;
                out.push(("ContainerStatus", ms(t)));
            }
        }
        Ok(out)
    }

    /// Three `Version` calls in a row, milliseconds: the round trips of a
    /// relist with no work behind them, the floor under any CRI server's
    /// relist on this machine (`None` for the docker path).
    pub async fn three_empty_calls(&self) -> Result<Option<f64>> {
        match self {
            Backend::Cri(b) => {
                let mut rt = b.rt.clone();
                let t = Instant::now();
                for _ in 0..3 {
                    rt.version(VersionRequest::default()).await?;
                }
                Ok(Some(ms(t)))
            }
            Backend::Docker(_) => Ok(None),
        }
    }

    /// ExecSync `true`; milliseconds.
    pub async fn exec_true(&self, container: &str) -> Result<f64> {
        let t = Instant::now();
        match self {
            Backend::Cri(b) => {
                let r =
                    b.rt.clone()
                        .exec_sync(ExecSyncRequest {
                            container_id: container.into(),
                            cmd: vec!["true".into()],
                            timeout: 30,
                        })
                        .await?
                        .into_inner();
                if r.exit_code != 0 {
                    return Err(anyhow!("exec true: exit {}", r.exit_code));
                }
            }
            Backend::Docker(b) => {
                let code = b.docker.exec(container, &["true"]).await?;
                if code != 0 {
                    return Err(anyhow!("exec true: exit {code}"));
                }
            }
        }
        Ok(ms(t))
    }

    /// Pull `image`: milliseconds, and for dockerd the layers it already had.
    pub async fn pull(&self, image: &str) -> Result<Pulled> {
        let t = Instant::now();
        let mut layers_present = None;
        match self {
            Backend::Cri(b) => {
                b.img
                    .clone()
                    .pull_image(PullImageRequest {
                        image: Some(ImageSpec {
                            image: image.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?;
            }
            Backend::Docker(b) => layers_present = Some(b.docker.pull(image).await?),
        }
        Ok(Pulled {
            ms: ms(t),
            layers_present,
        })
    }

    /// Whether dockerd still has `image` (CRI endpoints: not asked, `false`).
    pub async fn has_image(&self, image: &str) -> Result<bool> {
        match self {
            Backend::Cri(_) => Ok(false),
            Backend::Docker(b) => b.docker.image_exists(image).await,
        }
    }

    pub async fn remove_image(&self, image: &str) -> Result<()> {
        match self {
            Backend::Cri(b) => {
                b.img
                    .clone()
                    .remove_image(RemoveImageRequest {
                        image: Some(ImageSpec {
                            image: image.into(),
                            ..Default::default()
                        }),
                    })
                    .await?;
            }
            Backend::Docker(b) => b.docker.remove_image(image).await?,
        }
        Ok(())
    }
}

impl CriBackend {
    fn sandbox_config(&self, name: &str) -> PodSandboxConfig {
        let uid = format!("{name}-uid");
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "bench".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: format!("{}/bench_{name}_{uid}", self.log_root),
            labels: HashMap::from([("app".to_string(), "bench".to_string())]),
            linux: Some(kubelet_sandbox_linux(&uid)),
            ..Default::default()
        }
    }

    async fn start_pod(&self, name: &str) -> Result<(PodRef, Phases)> {
        let mut rt = self.rt.clone();
        let mut phases = Phases::new();
        let config = self.sandbox_config(name);
        let t = Instant::now();
        let sandbox = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .context("RunPodSandbox")?
            .into_inner()
            .pod_sandbox_id;
        phases.push(("RunPodSandbox", ms(t)));
        let t = Instant::now();
        let container = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: self.image.clone(),
                        ..Default::default()
                    }),
                    command: APP_CMD.iter().map(|s| s.to_string()).collect(),
                    log_path: "app/0.log".into(),
                    linux: Some(kubelet_container_linux()),
                    ..Default::default()
                }),
                sandbox_config: Some(config),
            })
            .await
            .context("CreateContainer")?
            .into_inner()
            .container_id;
        phases.push(("CreateContainer", ms(t)));
        let t = Instant::now();
        rt.start_container(StartContainerRequest {
            container_id: container.clone(),
        })
        .await
        .context("StartContainer")?;
        phases.push(("StartContainer", ms(t)));
        Ok((
            PodRef {
                name: name.into(),
                sandbox,
                container,
            },
            phases,
        ))
    }

    async fn stop_pod(&self, pod: &PodRef) -> Result<Phases> {
        let mut rt = self.rt.clone();
        let mut phases = Phases::new();
        let t = Instant::now();
        rt.stop_container(StopContainerRequest {
            container_id: pod.container.clone(),
            timeout: 0,
        })
        .await?;
        phases.push(("StopContainer", ms(t)));
        let t = Instant::now();
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.sandbox.clone(),
        })
        .await?;
        phases.push(("StopPodSandbox", ms(t)));
        let t = Instant::now();
        rt.remove_container(RemoveContainerRequest {
            container_id: pod.container.clone(),
        })
        .await?;
        phases.push(("RemoveContainer", ms(t)));
        let t = Instant::now();
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.sandbox.clone(),
        })
        .await?;
        phases.push(("RemovePodSandbox", ms(t)));
        Ok(phases)
    }
}

impl DockerBackend {
    fn pod_network(&self, pod: &PodRef, pid: u64) -> PodNetwork {
        PodNetwork {
            id: pod.sandbox.clone(),
            netns: format!("/proc/{pid}/ns/net").into(),
            name: pod.name.clone(),
            namespace: "bench".into(),
            uid: format!("{}-uid", pod.name),
            port_mappings: vec![],
            annotations: HashMap::new(),
        }
    }

    async fn start_pod(&self, name: &str) -> Result<(PodRef, Phases)> {
        let d = &self.docker;
        let mut phases = Phases::new();
        let t = Instant::now();
        let sandbox = d
            .create(
                &format!("k8s_POD_{name}"),
                serde_json::json!({
                    "Image": self.pause_image,
                    "Hostname": name,
                    "Labels": {"io.kubernetes.docker.type": "podsandbox", "io.kubernetes.pod.name": name},
                    "HostConfig": {
                        "NetworkMode": "none",
                        "IpcMode": "shareable",
                        "CgroupParent": pod_cgroup(&format!("{name}-uid")),
                    }
                }),
            )
            .await?;
        phases.push(("create pause", ms(t)));
        let t = Instant::now();
        d.start(&sandbox).await?;
        phases.push(("start pause", ms(t)));
        let t = Instant::now();
        let pid = d.inspect(&sandbox).await?["State"]["Pid"]
            .as_u64()
            .unwrap_or(0);
        if pid == 0 {
            return Err(anyhow!("pause container {sandbox} has no pid"));
        }
        phases.push(("inspect pause", ms(t)));
        let mut pod = PodRef {
            name: name.into(),
            sandbox: sandbox.clone(),
            container: String::new(),
        };
        let t = Instant::now();
        self.cni
            .setup(&self.pod_network(&pod, pid))
            .await
            .map_err(|e| anyhow!("CNI ADD: {e}"))?;
        phases.push(("CNI ADD", ms(t)));
        let t = Instant::now();
        let container = d
            .create(
                &format!("k8s_app_{name}"),
                serde_json::json!({
                    "Image": self.image,
                    "Cmd": APP_CMD,
                    "Labels": {"io.kubernetes.docker.type": "container", "io.kubernetes.pod.name": name},
                    "HostConfig": {
                        "NetworkMode": format!("container:{sandbox}"),
                        "IpcMode": format!("container:{sandbox}"),
                        "PidMode": "",
                        "CgroupParent": pod_cgroup(&format!("{name}-uid")),
                        "CpuShares": 2,
                        "OomScoreAdj": 1000,
                        "SecurityOpt": ["seccomp=unconfined"],
                    }
                }),
            )
            .await?;
        phases.push(("create app", ms(t)));
        let t = Instant::now();
        d.start(&container).await?;
        phases.push(("start app", ms(t)));
        pod.container = container;
        Ok((pod, phases))
    }

    async fn stop_pod(&self, pod: &PodRef) -> Result<Phases> {
        let d = &self.docker;
        let mut phases = Phases::new();
        let t = Instant::now();
        d.stop(&pod.container, 0).await?;
        phases.push(("stop app", ms(t)));
        let t = Instant::now();
        let pid = d.inspect(&pod.sandbox).await?["State"]["Pid"]
            .as_u64()
            .unwrap_or(0);
        if pid > 0 {
            self.cni
                .teardown(&self.pod_network(pod, pid))
                .await
                .map_err(|e| anyhow!("CNI DEL: {e}"))?;
        }
        phases.push(("CNI DEL", ms(t)));
        let t = Instant::now();
        d.stop(&pod.sandbox, 0).await?;
        phases.push(("stop pause", ms(t)));
        let t = Instant::now();
        d.remove(&pod.container).await?;
        phases.push(("remove app", ms(t)));
        let t = Instant::now();
        d.remove(&pod.sandbox).await?;
        phases.push(("remove pause", ms(t)));
        Ok(phases)
    }
}

/// `true` if `DockerBackend` can reach dockerd.
pub async fn docker_ping(d: &Docker) -> bool {
    d.call(Method::GET, "/_ping", None).await.is_ok() || d.version().await.is_ok()
}
